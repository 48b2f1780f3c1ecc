package bridge_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

func TestOrigin(t *testing.T) {
	t.Parallel()
	def, _ := echoBridge(t, &bridge.Handler{})
	listed, _ := echoBridge(t, &bridge.Handler{AllowedOrigins: []string{"https://app.example.com", "*.trusted.org"}})
	host := strings.TrimPrefix(def, "ws://")
	for _, tc := range []struct {
		url, origin string
		ok          bool
	}{
		{def, "", true},                      // non-browser client
		{def, "http://" + host, true},        // same origin
		{def, "https://evil.example", false}, // cross-site hijacking attempt
		{listed, "https://app.example.com", true},
		{listed, "http://app.example.com", false}, // full origins compare the scheme
		{listed, "https://x.trusted.org", true},
		{listed, "https://trusted.org.evil", false},
		{def, "null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		if tc.ok {
			c := dial(t, tc.url, &websocket.DialOptions{HTTPHeader: h})
			c.CloseNow()
			continue
		}
		status, _ := dialStatus(t, tc.url, &websocket.DialOptions{HTTPHeader: h})
		assert.Equal(t, http.StatusForbidden, status, tc.origin)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{BasicAuth: bridge.BasicAuthPassword("alice", "s3cret")}
	url, _ := echoBridge(t, h)
	status, hdr := dialStatus(t, url, nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), `Basic realm="wsbridge"`)

	bad := http.Header{}
	bad.Set("Authorization", "Basic YWxpY2U6d3Jvbmc=") // alice:wrong
	status, _ = dialStatus(t, url, &websocket.DialOptions{HTTPHeader: bad})
	assert.Equal(t, http.StatusUnauthorized, status)

	good := http.Header{}
	good.Set("Authorization", "Basic YWxpY2U6czNjcmV0") // alice:s3cret
	c := dial(t, url, &websocket.DialOptions{HTTPHeader: good})
	require.NoError(t, c.Write(context.Background(), websocket.MessageBinary, []byte("ok")))
	assert.Equal(t, "ok", string(readN(t, c, 2, false)))
	assert.Equal(t, uint64(2), h.Stats().Refused)
}

func TestMaxConns(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{MaxConns: 2}
	url, _ := echoBridge(t, h)
	c1 := dial(t, url, nil)
	dial(t, url, nil)
	status, hdr := dialStatus(t, url, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "5", hdr.Get("Retry-After"))
	c1.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return h.Stats().Open == 1 }, 5*time.Second, 10*time.Millisecond)
	dial(t, url, nil)
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{IdleTimeout: 600 * time.Millisecond}
	url, logs := echoBridge(t, h)
	c := dial(t, url, nil)
	ctx := context.Background()
	// Activity keeps it open past the timeout.
	for range 4 {
		time.Sleep(200 * time.Millisecond)
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("x")))
		readN(t, c, 1, false)
	}
	start := time.Now()
	_, _, err := c.Read(ctx)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err))
	assert.Less(t, time.Since(start), 2*time.Second)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "idle timeout") }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, logs.String(), "ended_by=bridge")
}

// TestHeartbeatDeadPeer: a client that never reads never answers pings
// (coder/websocket answers them while reading), so the bridge drops it;
// a reading client stays.
func TestHeartbeatDeadPeer(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond}
	url, logs := echoBridge(t, h)

	alive := dial(t, url, nil)
	readErr := make(chan error, 1)
	go func() { _, _, err := alive.Read(context.Background()); readErr <- err }()

	dial(t, url, nil) // dead: never reads
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "dead peer") }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return h.Stats().Open == 1 }, 5*time.Second, 10*time.Millisecond)
	select {
	case err := <-readErr:
		t.Fatalf("live client closed: %v", err)
	default:
	}
	alive.CloseNow()
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{}
	url, _ := echoBridge(t, h)
	c := dial(t, url, nil)
	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(context.Background()); readErr <- err }()
	// The handshake can finish before the handler counts the relay as open;
	// shut down only once it does, or the relay counts as arriving late.
	for deadline := time.Now().Add(5 * time.Second); h.Stats().Open != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, int64(1), h.Stats().Open)

	// Open relays may finish within the deadline...
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	time.Sleep(50 * time.Millisecond)
	status, _ := dialStatus(t, url, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status, "new connections refused while shutting down")
	select {
	case <-readErr:
		t.Fatal("connection closed before the deadline")
	default:
	}
	// ...then are closed with 1001.
	assert.ErrorIs(t, <-done, context.DeadlineExceeded)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(<-readErr))
	assert.Equal(t, int64(0), h.Stats().Open)
}

func TestShutdownIdle(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{}
	url, _ := echoBridge(t, h)
	c := dial(t, url, nil)
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Close(websocket.StatusNormalClosure, "")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	assert.NoError(t, h.Shutdown(ctx), "the relay finished by itself")
}

func TestStatic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vnc.html"), []byte("<html>novnc</html>"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "core"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "core", "rfb.js"), []byte("//rfb"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".secret"), []byte("no"), 0o644))
	outside := filepath.Join(t.TempDir(), "outside")
	require.NoError(t, os.WriteFile(outside, []byte("outside"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))

	for _, listings := range []bool{false, true} {
		static, err := bridge.Static(dir, listings)
		require.NoError(t, err)
		url, _ := echoBridge(t, &bridge.Handler{Static: static})
		base := "http" + strings.TrimPrefix(url, "ws")
		get := func(path string) (int, string) {
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		status, body := get("/vnc.html")
		assert.Equal(t, 200, status)
		assert.Equal(t, "<html>novnc</html>", body)
		status, _ = get("/core/rfb.js")
		assert.Equal(t, 200, status)
		for _, p := range []string{"/.secret", "/link", "/../outside", "/core/../../outside", "/%2e%2e/outside"} {
			status, body = get(p)
			assert.NotEqual(t, 200, status, p)
			assert.NotContains(t, body, "outside", p)
		}
		status, body = get("/core/")
		if listings {
			assert.Equal(t, 200, status)
			assert.Contains(t, body, "rfb.js")
		} else {
			assert.Equal(t, 404, status)
		}
		// The WebSocket still works on the same port.
		c := dial(t, url, nil)
		c.CloseNow()
	}
}

// TestClientCertCN: with RequireAndVerifyClientCert on the server, the
// Handler lets through only the listed common names.
func TestClientCertCN(t *testing.T) {
	t.Parallel()
	server, client := peertest.SelfSigned(t), peertest.SelfSigned(t) // client's CN: "wsproxy test"
	for _, tc := range []struct {
		cns    []string
		status int
	}{
		{[]string{"someone", "wsproxy test"}, http.StatusSwitchingProtocols},
		{[]string{"someone else"}, http.StatusForbidden},
	} {
		h := &bridge.Handler{ClientCertCNs: tc.cns, Resolver: bridge.FixedTarget{Address: peertest.EchoServer(t)}, Logger: slog0(t)}
		srv := httptest.NewUnstartedServer(h)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: client.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
		srv.StartTLS()
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: server.Pool, Certificates: []tls.Certificate{client.TLS}}}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), &websocket.DialOptions{HTTPClient: hc})
		cancel()
		if err == nil {
			c.CloseNow()
		}
		require.NotNil(t, resp, "%v", err)
		assert.Equal(t, tc.status, resp.StatusCode, "%v", tc.cns)
		hc.CloseIdleConnections()
		srv.Close()
		_ = h.Shutdown(context.Background())
	}
	// Without TLS the check fails closed.
	h := &bridge.Handler{ClientCertCNs: []string{"wsproxy test"}}
	url, _ := echoBridge(t, h)
	status, _ := dialStatus(t, url, nil)
	assert.Equal(t, http.StatusForbidden, status)
}
