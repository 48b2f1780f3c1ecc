package bridge_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
)

// TestNoOpenRelayByDefault: a Handler without a Resolver refuses every
// WebSocket with 500 and dials nothing; there is no default target.
func TestNoOpenRelayByDefault(t *testing.T) {
	t.Parallel()
	dialed := make(chan string, 1)
	h := &bridge.Handler{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed <- addr
		return nil, net.ErrClosed
	}}
	url, logs := serve(t, h)
	for _, q := range []string{"", "?token=x", "?target=127.0.0.1:22", "?host=127.0.0.1&port=22"} {
		status, _ := dialStatus(t, url+q, nil)
		assert.Equal(t, http.StatusInternalServerError, status, q)
	}
	select {
	case addr := <-dialed:
		t.Fatalf("the bridge dialled %s without a configured target", addr)
	default:
	}
	assert.Contains(t, logs.String(), "Handler.Resolver is nil")
}

// TestSecretsStayOutOfLogs: neither the Basic password (in clear or
// encoded) nor the Authorization header reaches the bridge's log, for
// refused and accepted requests alike.
func TestSecretsStayOutOfLogs(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{BasicAuth: bridge.BasicAuthPassword("alice", "s3cret")}
	url, logs := echoBridge(t, h)
	for _, auth := range []string{"Basic YWxpY2U6d3Jvbmc=", "Basic YWxpY2U6czNjcmV0", "Basic !!!", "Bearer tok3n"} {
		hdr := http.Header{}
		hdr.Set("Authorization", auth)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
		cancel()
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err == nil {
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		}
	}
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "connection closed") }, 5*time.Second, 10*time.Millisecond)
	for _, secret := range []string{"s3cret", "czNjcmV0", "YWxpY2U6", "d3Jvbmc", "wrong", "tok3n", "Authorization"} {
		assert.NotContains(t, logs.String(), secret)
	}
}

// TestHixieAnswerHasNoInjectedLines: the legacy handshake echoes the
// Origin, Host and path into its answer; a control character in any of
// them (a percent-encoded CR LF in the path stays encoded; a raw one is
// refused) cannot add a header line.
func TestHixieAnswerHasNoInjectedLines(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{AllowedOrigins: []string{"*"}})
	addr := strings.TrimPrefix(url, "ws://")
	for _, tc := range []struct{ path, origin string }{
		{"/x%0d%0aSet-Cookie:%20a=b", "http://o"},
		{"/x", "http://o\x0bSet-Cookie: a=b"},
	} {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = nc.Write([]byte("GET " + tc.path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n" +
			"Origin: " + tc.origin + "\r\nSec-WebSocket-Key1: 1 2\r\nSec-WebSocket-Key2: 3 4\r\n\r\n12345678"))
		require.NoError(t, err)
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(5*time.Second)))
		resp, err := http.ReadResponse(bufioReader(nc), nil)
		require.NoError(t, err)
		assert.Empty(t, resp.Header.Values("Set-Cookie"), tc.path)
		if resp.StatusCode == http.StatusSwitchingProtocols {
			assert.Contains(t, resp.Header.Get("Sec-WebSocket-Location"), "%0d%0a", "the path stays percent-encoded")
		}
		nc.Close()
	}
}
