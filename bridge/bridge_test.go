package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// serve starts h on an httptest server and returns its ws:// URL; h's
// Logger writes to the returned buffer when it has none.
func serve(t *testing.T, h *bridge.Handler) (string, *logBuffer) {
	t.Helper()
	return serveWith(t, h, nil)
}

// serveWith is serve with a hook that may change the server (its
// listener) before it starts.
func serveWith(t *testing.T, h *bridge.Handler, setup func(*httptest.Server)) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if h.Logger == nil {
		h.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := httptest.NewUnstartedServer(h)
	if setup != nil {
		setup(srv)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs)
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), logs
}

func dial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	require.NoError(t, err)
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialStatus attempts a handshake that should fail and returns the HTTP
// status.
func dialStatus(t *testing.T, url string, opts *websocket.DialOptions) (int, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err == nil {
		c.CloseNow()
		t.Fatalf("handshake succeeded, want a refusal")
	}
	require.NotNil(t, resp, "no HTTP response: %v", err)
	if resp.Body != nil {
		resp.Body.Close()
	}
	return resp.StatusCode, resp.Header
}

func echoBridge(t *testing.T, h *bridge.Handler) (string, *logBuffer) {
	t.Helper()
	h.Resolver = bridge.FixedTarget{Address: peertest.EchoServer(t)}
	return serve(t, h)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// readN reads messages from c until n bytes arrived, decoding base64 text.
func readN(t *testing.T, c *websocket.Conn, n int, b64 bool) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []byte
	for len(got) < n {
		typ, p, err := c.Read(ctx)
		require.NoError(t, err, "after %d of %d bytes", len(got), n)
		if b64 {
			require.Equal(t, websocket.MessageText, typ)
			d, err := decodeB64(p)
			require.NoError(t, err)
			p = d
		} else {
			require.Equal(t, websocket.MessageBinary, typ)
		}
		got = append(got, p...)
	}
	return got
}

func TestEchoBinary(t *testing.T) {
	t.Parallel()
	url, logs := echoBridge(t, &bridge.Handler{})
	for _, offer := range [][]string{nil, {"binary"}, {"base64", "binary"}} {
		c := dial(t, url, &websocket.DialOptions{Subprotocols: offer})
		want := "binary"
		if offer == nil {
			want = ""
		}
		assert.Equal(t, want, c.Subprotocol())
		data := randomBytes(t, 1<<20+17)
		ctx := context.Background()
		go func() {
			// Several sizes of message, including empty and larger than
			// the relay's buffer.
			rest := data
			for i := 0; len(rest) > 0; i++ {
				n := min(len(rest), []int{0, 1, 100, 70000, 4096}[i%5])
				if err := c.Write(ctx, websocket.MessageBinary, rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
		}()
		got := readN(t, c, len(data), false)
		require.True(t, bytes.Equal(data, got), "echoed bytes differ")
		require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
	}
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "connection closed") == 3 }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, logs.String(), "close_code=1000 close_reason=bye")
	assert.Contains(t, logs.String(), "from_client=1048593 to_client=1048593")
}

func TestEchoBase64(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})
	require.Equal(t, "base64", c.Subprotocol())
	data := randomBytes(t, 200000)
	ctx := context.Background()
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 3001)
			if err := c.Write(ctx, websocket.MessageText, []byte(encodeB64(rest[:n]))); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	got := readN(t, c, len(data), true)
	require.True(t, bytes.Equal(data, got))
}

func TestBase64Invalid(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})
	require.NoError(t, c.Write(context.Background(), websocket.MessageText, []byte("not base64!")))
	_, _, err := c.Read(context.Background())
	assert.Equal(t, websocket.StatusInvalidFramePayloadData, websocket.CloseStatus(err))
}

func TestTextInBinaryMode(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	require.NoError(t, c.Write(context.Background(), websocket.MessageText, []byte("hello")))
	_, _, err := c.Read(context.Background())
	assert.Equal(t, websocket.StatusUnsupportedData, websocket.CloseStatus(err))
}

func TestSubprotocolNegotiation(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	for _, tc := range []struct {
		header string
		want   string // "" with status 0 means accepted without subprotocol
		status int
	}{
		{header: "foo, binary", want: "binary"},
		{header: "foo,binary", want: "binary"},
		{header: "  base64 ,  foo ", want: "base64"},
		{header: "base64, binary", want: "binary"},
		{header: "foo, bar", status: http.StatusBadRequest},
		{header: "", want: ""},
	} {
		t.Run(tc.header, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Sec-WebSocket-Protocol", tc.header)
			}
			if tc.status != 0 {
				status, _ := dialStatus(t, url, &websocket.DialOptions{HTTPHeader: h})
				assert.Equal(t, tc.status, status)
				return
			}
			// coder/websocket's client checks the answer against its own
			// offer, so send the raw header and read the raw answer.
			resp := rawUpgrade(t, strings.TrimPrefix(url, "ws://"), h)
			assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			assert.Equal(t, tc.want, resp.Header.Get("Sec-WebSocket-Protocol"))
		})
	}
}

// rawUpgrade sends a WebSocket upgrade by hand and returns the answer.
func rawUpgrade(t *testing.T, addr string, extra http.Header) *http.Response {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	for k, v := range extra {
		req.Header[k] = v
	}
	require.NoError(t, req.Write(nc))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufioReader(nc), req)
	require.NoError(t, err)
	return resp
}

// TestTargetClosesAfterSending checks that every byte the target sent
// before closing reaches the client, followed by 1000 "target closed".
func TestTargetClosesAfterSending(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, 300000)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write(payload)
		c.Close()
	}()
	url, logs := serve(t, &bridge.Handler{Resolver: bridge.FixedTarget{Address: l.Addr().String()}})
	c := dial(t, url, nil)
	got := readN(t, c, len(payload), false)
	require.True(t, bytes.Equal(payload, got))
	_, _, err = c.Read(context.Background())
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
	assert.Equal(t, "target closed", ce.Reason)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "ended_by=target") }, 5*time.Second, 10*time.Millisecond)
}

// TestClientCloseHalfClosesTarget checks that the target reads every
// byte the client sent, then EOF.
func TestClientCloseHalfClosesTarget(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	received := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // returns at EOF: the write side was shut
		received <- b
	}()
	url, logs := serve(t, &bridge.Handler{Resolver: bridge.FixedTarget{Address: l.Addr().String()}})
	c := dial(t, url, nil)
	data := randomBytes(t, 500000)
	ctx := context.Background()
	for rest := data; len(rest) > 0; rest = rest[min(len(rest), 65536):] {
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, rest[:min(len(rest), 65536)]))
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
	select {
	case b := <-received:
		require.True(t, bytes.Equal(data, b), "target got %d bytes, want %d", len(b), len(data))
	case <-time.After(10 * time.Second):
		t.Fatal("target never saw EOF")
	}
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "ended_by=client") }, 5*time.Second, 10*time.Millisecond)
}

func TestDialFailure(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: addr}}
	url, logs := serve(t, h)
	c := dial(t, url, nil)
	_, _, err = c.Read(context.Background())
	assert.Equal(t, websocket.StatusInternalError, websocket.CloseStatus(err))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "target dial failed") }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, logs.String(), "connection refused")
	assert.Equal(t, uint64(1), h.Stats().Failed)
}

func TestNotWebSocket(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
}

func TestStats(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{}
	url, _ := echoBridge(t, h)
	c := dial(t, url, nil)
	ctx := context.Background()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("hello")))
	readN(t, c, 5, false)
	// The counters move just after each write returns, so the echo can
	// reach the client a moment before BytesIn counts it.
	require.Eventually(t, func() bool { s := h.Stats(); return s.BytesIn == 5 && s.BytesOut == 5 },
		5*time.Second, time.Millisecond, "live counters: %+v", h.Stats())
	assert.Equal(t, int64(1), h.Stats().Open)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool { return h.Stats().Open == 0 }, 5*time.Second, 10*time.Millisecond)
	s := h.Stats()
	assert.Equal(t, uint64(1), s.Total)
	assert.Equal(t, int64(5), s.BytesIn)
}
