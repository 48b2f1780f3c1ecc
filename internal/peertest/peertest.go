// Package peertest starts real third-party programs (proxies, WebSocket
// servers, browsers) for tests and stops them when the test ends.
//
// A test that needs a peer calls Require or one of the Start helpers. When
// the peer's program is not installed the test is skipped with a message
// naming the missing program and the package that provides it, unless the
// environment variable WSPROXY_REQUIRE_PEERS is set to 1, in which case the
// test fails instead: CI installs every peer and must never skip silently.
package peertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Required reports whether missing peers fail tests (WSPROXY_REQUIRE_PEERS=1)
// instead of skipping them.
func Required() bool { return os.Getenv("WSPROXY_REQUIRE_PEERS") == "1" }

// Require returns the absolute path of program, or ends the test: skipped
// with a clear message normally, failed under WSPROXY_REQUIRE_PEERS=1.
// hint names how to install it (for example "apt-get install tinyproxy").
func Require(t testing.TB, program, hint string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + program
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	Missing(t, fmt.Sprintf("peer program %q not found (install: %s)", program, hint))
	return ""
}

// Missing ends the test because a peer is unavailable: skip, or fail when
// WSPROXY_REQUIRE_PEERS=1.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("WSPROXY_REQUIRE_PEERS=1 but %s", why)
	}
	t.Skipf("skipping: %s (set WSPROXY_REQUIRE_PEERS=1 to make this fail)", why)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Prefer listeners on port 0 where the code under test allows it.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peertest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a running peer.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has already ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start runs a peer in its own process group, logs its output when the test
// fails, and kills the group in t.Cleanup.
func Start(t testing.TB, name string, argv []string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	ownProcessGroup(cmd)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("peertest: start %s: %v", name, err)
	}
	p := &Process{Name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		stopGroup(cmd, false)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			stopGroup(cmd, true)
			<-p.done
		}
		if t.Failed() {
			t.Logf("peer %s output:\n%s", name, p.Output())
		}
	})
	return p
}

// WaitTCP waits until addr accepts TCP connections, the process exits, or
// timeout passes; the last two fail the test with the peer's output.
func (p *Process) WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if p.Exited() {
			t.Fatalf("peer %s exited before listening on %s: %v\n%s", p.Name, addr, p.err, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer %s not listening on %s after %v\n%s", p.Name, addr, timeout, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// EchoServer listens on 127.0.0.1:0 and echoes every byte back on each
// connection until the test ends. It returns the address.
func EchoServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peertest: echo listen: %v", err)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		cancel()
		wg.Wait()
	})
	return l.Addr().String()
}

// WriteFile writes a file for a peer's configuration with the given mode
// and fails the test on error.
func WriteFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatalf("peertest: write %s: %v", path, err)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep memory bounded for chatty peers
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
