package wsproxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// Through real proxies (tinyproxy, squid) to a real WebSocket server
// (Debian's websockify in front of a TCP echo), for ws:// and wss://.
func TestPeersDialThroughRealProxies(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	echo := peertest.EchoServer(t)
	ws := peertest.Websockify(t, echo, "")
	wss := peertest.Websockify(t, echo, cert.PEMFile)

	proxies := map[string]func(t *testing.T) string{
		"tinyproxy": func(t *testing.T) string { return peertest.Tinyproxy(t, "alice", testPassword) },
		"squid": func(t *testing.T) string {
			return peertest.StartSquid(t, peertest.SquidBasic, "alice", testPassword).Addr
		},
	}
	for name, start := range proxies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := start(t)
			for _, scheme := range []string{"ws", "wss"} {
				t.Run(scheme, func(t *testing.T) {
					t.Parallel()
					target := ws
					if scheme == "wss" {
						target = wss
					}
					var dials atomic.Int64
					d := &wsproxy.Dialer{
						Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword("alice", testPassword)}),
						TLSClientConfig: &tls.Config{RootCAs: cert.Pool},
						NetDial:         countingDial(&dials),
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					// The first dial waits for the Basic challenge (tinyproxy
					// closes after it: a second connection); the second sends
					// Basic at once: one connection.
					for i, wantDials := range []int64{map[string]int64{"tinyproxy": 2, "squid": 1}[name], 1} {
						dials.Store(0)
						c, resp, err := d.Dial(ctx, scheme+"://"+target+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
						require.NoError(t, err)
						require.Equal(t, "binary", resp.Header.Get("Sec-WebSocket-Protocol"))
						streamEcho(t, ctx, c, 256<<10)
						require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
						require.EqualValues(t, wantDials, dials.Load(), "TCP connections to the proxy in dial %d", i+1)
					}
				})
			}
			t.Run("wrong password", func(t *testing.T) {
				t.Parallel()
				d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword("alice", "wrong")})}
				_, _, err := d.Dial(context.Background(), "ws://"+ws+"/", nil)
				require.ErrorIs(t, err, wsproxy.ErrProxyCredentialsRejected)
				assertNoSecrets(t, err.Error(), "wrong")
			})
			t.Run("no credentials", func(t *testing.T) {
				t.Parallel()
				d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr})}
				_, _, err := d.Dial(context.Background(), "ws://"+ws+"/", nil)
				require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
				require.Contains(t, err.Error(), "offered: Basic realm=")
			})
		})
	}
}

// streamEcho sends n random bytes as binary messages and reads the echo
// back; websockify may split or join messages, so bytes are compared as a
// stream.
func streamEcho(t *testing.T, ctx context.Context, c *websocket.Conn, n int) {
	t.Helper()
	c.SetReadLimit(1 << 20) // websockify sends whatever one TCP read gave it
	data := make([]byte, n)
	_, _ = rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < n; off += 16 << 10 {
			if err := c.Write(ctx, websocket.MessageBinary, data[off:min(off+16<<10, n)]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	var got bytes.Buffer
	for got.Len() < n {
		_, msg, err := c.Read(ctx)
		require.NoError(t, err)
		got.Write(msg)
	}
	require.NoError(t, <-errc)
	require.True(t, bytes.Equal(data, got.Bytes()), "echoed bytes differ")
}

// The environment decides when Dialer.Proxy is nil: http_proxy sends the
// dial through tinyproxy, NO_PROXY sends it direct.
func TestPeersEnvironmentAndNoProxy(t *testing.T) {
	t.Parallel()
	host := peertest.RoutableHost(t) // loopback would go direct regardless
	echo := peertest.EchoServer(t)
	ws := peertest.WebsockifyOn(t, host, echo, "")
	proxy := peertest.Tinyproxy(t, "alice", testPassword)
	proxyURL := "http://alice:" + testPassword + "@" + proxy

	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantProxy bool
	}{
		{"http_proxy", map[string]string{"http_proxy": proxyURL}, true},
		{"ws_proxy", map[string]string{"ws_proxy": proxyURL, "http_proxy": "http://127.0.0.1:1"}, true},
		{"NO_PROXY host", map[string]string{"http_proxy": proxyURL, "NO_PROXY": host}, false},
		{"no_proxy CIDR", map[string]string{"http_proxy": proxyURL, "no_proxy": host + "/32"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dialed []string
			d := &wsproxy.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed = append(dialed, addr)
				var nd net.Dialer
				return nd.DialContext(ctx, network, addr)
			}}
			wsproxy.SetTestEnv(d, tc.env)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, _, err := d.Dial(ctx, "ws://"+ws+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
			require.NoError(t, err)
			defer c.CloseNow()
			streamEcho(t, ctx, c, 4<<10)
			want := []string{ws}
			if tc.wantProxy {
				// tinyproxy closes after its 407; the URL's password goes
				// only once it asked for Basic, on a new connection.
				want = []string{proxy, proxy}
			}
			require.Equal(t, want, dialed)
		})
	}
}
