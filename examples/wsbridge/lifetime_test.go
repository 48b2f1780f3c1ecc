package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// runUntilExit starts wsbridge in process and returns its address and a
// channel that receives run's result when it exits by itself.
func runUntilExit(t *testing.T, args ...string) (string, <-chan error, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- run(ctx, append([]string{"127.0.0.1:0"}, args...), logs, func(a net.Addr) { addrCh <- a.String() })
	}()
	exited := make(chan error, 1)
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("wsbridge did not start: %v\n%s", err, logs)
	}
	go func() { exited <- <-done }()
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("wsbridge log:\n%s", logs)
		}
	})
	return addr, exited, logs
}

func echoOnce(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte(msg)))
	_, p, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, msg, string(p))
}

// TestIdleTimeoutExits: websockify's --idle-timeout, the server exits
// once it has had no connection for that long, never while one is open.
func TestIdleTimeoutExits(t *testing.T) {
	t.Parallel()
	addr, exited, logs := runUntilExit(t, "--idle-timeout", "0.4", peertest.EchoServer(t))
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	time.Sleep(700 * time.Millisecond)
	echoOnce(t, c, "still here")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("wsbridge did not exit after --idle-timeout")
	}
	assert.Contains(t, logs.String(), "reason=\"--idle-timeout: no connections\"")
}

// TestTimeoutStopsAccepting: websockify's --timeout, the listener closes
// after that long, open connections go on, the process exits after them.
func TestTimeoutStopsAccepting(t *testing.T) {
	t.Parallel()
	addr, exited, _ := runUntilExit(t, "--timeout", "1", peertest.EchoServer(t))
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.Eventually(t, func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "listener still open")
	echoOnce(t, c, "open connections go on")
	select {
	case err := <-exited:
		t.Fatalf("exited with a connection open: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("wsbridge did not exit after its last connection")
	}
}
