package bridge

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
)

// recordedBridge serves Hixie through a tapped adapter, relaying to
// target with a plain two-way copy, recording to base.<n> and showing
// traffic in legend. done receives one value per finished connection.
func recordedBridge(t *testing.T, target, base string, legend io.Writer) (addr string, done chan struct{}) {
	t.Helper()
	rec := NewRecorder(base, 0)
	tl := NewTrafficLegend(legend)
	done = make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		hc, err := acceptHixie(w, r, 0)
		if err != nil {
			return
		}
		recording, err := rec.Open()
		if err != nil {
			t.Error(err)
			hc.closeWith(0, "")
			return
		}
		defer recording.Close()
		c := &tappedHixie{hc, []testTap{recording, tl}}
		defer c.closeWith(0, "")
		tc, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer tc.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(c, tc)
			c.closeWith(websocket.StatusNormalClosure, "target closed")
		}()
		_, _ = io.Copy(tc, c)
		tc.Close()
		wg.Wait()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), done
}

// testTap is the relay's tap, as a Recording and a TrafficLegend offer it.
type testTap interface {
	FromClient(p []byte)
	ToClient(p []byte)
}

// tappedHixie reports each Read and Write to the taps, as the relay does.
type tappedHixie struct {
	*hixieConn
	taps []testTap
}

func (t *tappedHixie) Read(p []byte) (int, error) {
	n, err := t.hixieConn.Read(p)
	for _, tp := range t.taps {
		if n > 0 {
			tp.FromClient(p[:n])
		}
	}
	return n, err
}

func (t *tappedHixie) Write(p []byte) (int, error) {
	for _, tp := range t.taps {
		tp.ToClient(p)
	}
	return t.hixieConn.Write(p)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkValidRecording does a light check here; record_test.go's readers
// check the format in depth.
func checkValidRecording(t *testing.T, path string, wantFrames int) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "var VNC_frame_data = [\n") || !strings.HasSuffix(s, "\n'EOF'];\n") {
		t.Fatalf("%s is not a complete recording:\n%s", path, s)
	}
	if n := strings.Count(s, "\n") - 2; n < wantFrames {
		t.Fatalf("%s has %d frames, want at least %d:\n%s", path, n, wantFrames, s)
	}
	return s
}

func dialHixie(t *testing.T, addr string) *hixietest.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := hixietest.Dial(ctx, addr, hixietest.Options{Version: hixie.Hixie76})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the bridge did not end the connection")
	}
}

// TestRecordingValidAfterEveryKindOfEnd records Hixie sessions that end
// in each way the issue names and parses each file back.
func TestRecordingValidAfterEveryKindOfEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	// 1. The client vanishes without a closing handshake.
	echo := echoTarget(t)
	legend := &syncBuf{}
	addr, done := recordedBridge(t, echo, filepath.Join(dir, "vanish"), legend)
	c := dialHixie(t, addr)
	if err := c.Send([]byte("RFB 003.008\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Recv(); err != nil {
		t.Fatal(err)
	}
	// Mid-session, before any end, the file is already complete.
	checkValidRecording(t, filepath.Join(dir, "vanish.1"), 2)
	c.Close()
	waitDone(t, done)
	s := checkValidRecording(t, filepath.Join(dir, "vanish.1"), 2)
	if !strings.Contains(s, `'}`) || !strings.Contains(s, `'{`) || !strings.Contains(s, `RFB 003.008\n',`) {
		t.Errorf("recording lacks a direction:\n%s", s)
	}
	if got := strings.TrimPrefix(legend.String(), TrafficLegendHeader); got != "}>{<" {
		t.Errorf("traffic legend %q, want }>{<", got)
	}

	// 2. The target resets the connection.
	rst := resettingTarget(t)
	addr, done = recordedBridge(t, rst, filepath.Join(dir, "reset"), io.Discard)
	c = dialHixie(t, addr)
	_ = c.Send([]byte("trigger"))
	waitDone(t, done)
	checkValidRecording(t, filepath.Join(dir, "reset.1"), 2) // "}trigger" and the target's "{bye"

	// 3. The client sends the closing handshake.
	addr, done = recordedBridge(t, echo, filepath.Join(dir, "close"), io.Discard)
	c = dialHixie(t, addr)
	_ = c.Send([]byte("x"))
	_, _, _ = c.Recv()
	if err := c.CloseHandshake(5 * time.Second); err != nil {
		t.Errorf("closing handshake: %v", err)
	}
	waitDone(t, done)
	checkValidRecording(t, filepath.Join(dir, "close.1"), 2)
}

// echoTarget echoes on every connection until the test ends.
func echoTarget(t *testing.T) string {
	return serveTarget(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// resettingTarget answers "bye" to the first bytes, then resets.
func resettingTarget(t *testing.T) string {
	return serveTarget(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 100))
		_, _ = c.Write([]byte("bye"))
		time.Sleep(50 * time.Millisecond)
		_ = c.(*net.TCPConn).SetLinger(0)
	})
}

func serveTarget(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}
