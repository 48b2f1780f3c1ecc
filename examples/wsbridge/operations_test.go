package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestLogFormatJSON: --log-format json writes one JSON object per line,
// the connection's line with its fields.
func TestLogFormatJSON(t *testing.T) {
	t.Parallel()
	addr, logs := startBridge(t, "--log-format", "json", peertest.EchoServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	echoOnce(t, c, "json")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "connection closed") }, 5*time.Second, 10*time.Millisecond)
	var closed map[string]any
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not JSON: %q", line)
		if rec["msg"] == "bridge: connection closed" {
			closed = rec
		}
	}
	require.NotNil(t, closed)
	assert.Equal(t, 4.0, closed["from_client"])
	assert.Equal(t, 1000.0, closed["close_code"])
	assert.Equal(t, "client", closed["ended_by"])
}

// TestMetricsListener: --metrics-listen serves /metrics (the bridge's,
// Go's and the process's), /healthz and /readyz, and nothing else.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	metrics := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	addr, _ := startBridge(t, "--metrics-listen", metrics, peertest.EchoServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	echoOnce(t, c, "counted")

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + metrics + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	wants := []string{
		"wsbridge_connections_open 1",
		`wsbridge_bytes_total{direction="to_target"} 7`,
		`wsbridge_bytes_total{direction="to_client"} 7`,
		`wsbridge_connections_total{reason="",result="ok"} 1`,
		"wsbridge_target_dial_seconds_bucket",
		"go_goroutines ",
		"process_open_fds ",
	}
	// A direction's bytes are counted once its write returns, which can be
	// just after the echo has already come back (seen under -race load):
	// scrape until the counters have caught up.
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = get("/metrics")
		if code != http.StatusOK {
			return false
		}
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "metrics never showed all of %q:\n%s", wants, body)
	code, _ := get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get("/readyz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get("/")
	assert.Equal(t, http.StatusNotFound, code)
}

// TestSignalDrainDelay: SIGTERM with --drain-delay turns /readyz 503 at
// once while new connections are still served; after the delay the
// listener closes; a second signal closes the open connection with 1001
// and the process exits 0.
func TestSignalDrainDelay(t *testing.T) {
	t.Parallel()
	p := startBridgeProc(t, "wsbridge", "--drain-delay", "1", peertest.EchoServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.Equal(t, http.StatusOK, p.status(t, "/readyz"))

	require.NoError(t, p.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return p.status(t, "/readyz") == http.StatusServiceUnavailable }, 5*time.Second, 5*time.Millisecond)
	fresh, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/", nil)
	require.NoError(t, err, "a new connection during --drain-delay is served")
	echoOnce(t, fresh, "still serving")
	require.NoError(t, fresh.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool {
		nc, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "listener still open after the drain delay")
	echoOnce(t, c, "open connections go on")
	assert.Equal(t, 1.0, p.metric(t, "wsbridge_draining"))

	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); readErr <- err }()
	require.NoError(t, p.Signal(syscall.SIGTERM))
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(<-readErr))
	exited, err := p.Wait(10 * time.Second)
	require.True(t, exited)
	require.NoError(t, err)
	assert.Contains(t, p.Output(), "draining: not ready, still accepting")
}
