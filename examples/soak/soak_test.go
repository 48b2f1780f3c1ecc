//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The soak starts the bridge by running its own binary again: here,
	// this test binary.
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	goleak.VerifyTestMain(m)
}

// logWriter sends the soak's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// shortConfig is the CI version of the soak: a tenth of the connections
// for a few seconds, at a rate the race detector keeps up with.
func shortConfig(t *testing.T) config {
	cfg := defaultConfig()
	cfg.conns, cfg.duration = 200, 5*time.Second
	if testing.Short() {
		cfg.conns, cfg.duration = 50, 2*time.Second
	}
	cfg.rate = 16 << 10
	cfg.sampleEvery = 250 * time.Millisecond
	// Other packages' tests share the machine: whether the rate held
	// says more about them than about the bridge.
	cfg.minRate = 0
	cfg.drain = 20 * time.Second
	if raceEnabled {
		// The race detector's shadow memory grows with the bridge's
		// allocations (and sync.Pool drops items at random under it):
		// only gross growth says something about the bridge.
		cfg.memTol = 100
	}
	cfg.seed = uint64(time.Now().UnixNano())
	t.Logf("seed %d", cfg.seed)
	return cfg
}

func runSoak(t *testing.T, cfg config) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, logWriter{t})
	if err != nil {
		t.Fatalf("soak did not run: %v", err)
	}
	var sum strings.Builder
	res.writeSummary(&sum)
	t.Log("\n" + sum.String())
	return res
}

// TestSoak runs the program's soak as `go run ./examples/soak` does, the
// bridge in a child process, with fewer connections for less time.
func TestSoak(t *testing.T) {
	res := runSoak(t, shortConfig(t))
	if !res.Pass {
		t.Fatalf("soak failed: %s", strings.Join(res.Problems, "; "))
	}
	for d, name := range dirNames {
		if res.Verified[d] == 0 || res.Verified[d] != res.Sent[d] {
			t.Errorf("%s: verified %d of %d bytes sent", name, res.Verified[d], res.Sent[d])
		}
	}
}

// TestSoakBase64InProcess soaks the base64 subprotocol with the bridge in
// this process, where goleak also checks that the bridge and the soak
// leave no goroutine behind.
func TestSoakBase64InProcess(t *testing.T) {
	cfg := shortConfig(t)
	cfg.conns, cfg.duration = 50, 2*time.Second
	cfg.subprotocol = "base64"
	cfg.bridgeProc = false
	res := runSoak(t, cfg)
	if !res.Pass {
		t.Fatalf("soak failed: %s", strings.Join(res.Problems, "; "))
	}
}

// TestSoakReportsDamage damages three streams between the bridge and the
// target and checks that the soak fails naming each connection, direction
// and offset, and only those.
func TestSoakReportsDamage(t *testing.T) {
	cfg := shortConfig(t)
	cfg.conns, cfg.duration = 10, time.Second
	cfg.rate, cfg.msg = 64<<10, 4<<10 // 60 KiB or so each way, in small messages
	cfg.drain = 3 * time.Second       // connection 5 never gets its last bytes
	cfg.bridgeProc = false
	cfg.bridgeDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &damagingConn{Conn: c, idx: -1}, nil
	}
	res := runSoak(t, cfg)
	if res.Pass {
		t.Fatal("soak passed with damaged streams")
	}
	for _, want := range []string{
		"connection 3 client→target: corrupted: first difference at byte offset 1000 ",
		"connection 5 client→target: corrupted: first difference at byte offset 2000 ",
		"connection 7 target→client: corrupted: first difference at byte offset 3000 ",
	} {
		found := false
		for _, f := range res.Failures {
			found = found || strings.HasPrefix(f, want)
		}
		if !found {
			t.Errorf("no failure starting %q in %q", want, res.Failures)
		}
	}
	if res.ConnsFailed != 3 {
		t.Errorf("%d connections failed, want 3: %q", res.ConnsFailed, res.Failures)
	}
}

// damagingConn is the bridge's connection to the target, damaged for some
// connections (known from the hello): connection 3 gets one byte flipped
// at offset 1000 of the client's stream, connection 5 loses 10 bytes at
// offset 2000 of it, connection 7 gets one byte flipped at offset 3000 of
// the target's stream. It embeds the net.Conn interface, not the
// *net.TCPConn, so that the bridge cannot go around Read and Write
// (through SyscallConn, ReadFrom or WriteTo).
type damagingConn struct {
	net.Conn
	mu      sync.Mutex
	written int64 // of the client's stream, hello excluded
	hello   []byte
	idx     int
	read    int64
	idxSeen atomic.Int64
}

func (c *damagingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := bytes.Clone(p)
	if c.idx < 0 {
		n := min(helloLen-len(c.hello), len(out))
		c.hello = append(c.hello, out[:n]...)
		if len(c.hello) == helloLen {
			c.idx = int(binary.BigEndian.Uint32(c.hello[4:]))
			c.idxSeen.Store(int64(c.idx) + 1)
		}
		if _, err := c.Conn.Write(out[:n]); err != nil {
			return 0, err
		}
		out = out[n:]
	}
	start := c.written
	c.written += int64(len(out))
	switch {
	case c.idx == 3 && start <= 1000 && 1000 < c.written:
		out[1000-start] ^= 0x40
	case c.idx == 5:
		if lo, hi := max(start, 2000)-start, min(c.written, 2010)-start; lo < hi {
			out = append(out[:lo], out[hi:]...)
		}
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite keeps the bridge's half-close to the target.
func (c *damagingConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func (c *damagingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	// The target sends nothing before every hello has arrived.
	if c.idxSeen.Load() == 7+1 && c.read <= 3000 && 3000 < c.read+int64(n) {
		p[3000-c.read] ^= 0x01
	}
	c.read += int64(n)
	return n, err
}
