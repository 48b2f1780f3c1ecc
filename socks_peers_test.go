package wsproxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
	"github.com/wsproxy/wsproxy/internal/sysproxy"
)

// tlsFor trusts srv's certificate when it is a TLS server.
func tlsFor(srv *echoServer) *tls.Config {
	if srv.TLS == nil {
		return nil
	}
	return rootsFor(srv.Server)
}

// dialEcho dials the in-process echo server through d and checks a
// message comes back.
func dialEcho(t *testing.T, d *wsproxy.Dialer, srv *echoServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := d.Dial(ctx, srv.wsURL("/"), &websocket.DialOptions{Subprotocols: []string{"echo"}})
	require.NoError(t, err)
	defer c.CloseNow()
	echoOnce(t, ctx, c, websocket.MessageBinary, []byte("through a real proxy \x00\xff"))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}

// Real SOCKS5 servers: microsocks with and without credentials, Dante
// without; socks5 (names resolved here) and socks5h (at the proxy), for
// ws:// and wss://.
func TestPeersSOCKS5(t *testing.T) {
	t.Parallel()
	ws := newEchoServer(t, false)
	wss := newEchoServer(t, true)
	servers := map[string]func(t *testing.T) (addr string, user *url.Userinfo){
		"microsocks": func(t *testing.T) (string, *url.Userinfo) { return peertest.Microsocks(t, "", ""), nil },
		"microsocks with credentials": func(t *testing.T) (string, *url.Userinfo) {
			return peertest.Microsocks(t, "alice", testPassword), url.UserPassword("alice", testPassword)
		},
		"dante": func(t *testing.T) (string, *url.Userinfo) { return peertest.Dante(t), nil },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr, user := start(t)
			for _, scheme := range []string{"socks5", "socks5h"} {
				for _, target := range []*echoServer{ws, wss} {
					var dials atomic.Int64
					d := &wsproxy.Dialer{
						Proxy:           http.ProxyURL(&url.URL{Scheme: scheme, Host: addr, User: user}),
						TLSClientConfig: tlsFor(target),
						NetDial:         countingDial(&dials),
					}
					dialEcho(t, d, target)
					require.EqualValues(t, 1, dials.Load(), "one connection, to the SOCKS server")
				}
			}
			if user == nil {
				return
			}
			// Wrong credentials: a clear error without the password, and no
			// failover (the proxy answered).
			logs := &logSink{}
			d := &wsproxy.Dialer{Logf: logs.Logf}
			wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.GNOME,
				SOCKS: &url.URL{Scheme: "socks5h", Host: addr, User: url.UserPassword("alice", "wrong-pw")}}})
			_, _, err := d.Dial(context.Background(), ws.wsURL("/"), nil)
			require.Error(t, err)
			var pe *wsproxy.ProxyError
			require.ErrorAs(t, err, &pe)
			require.Contains(t, err.Error(), "SOCKS5")
			assertNoSecrets(t, err.Error()+logs.String(), "wrong-pw", testPassword)
		})
	}
}

// A PAC answer "SOCKS5 host:port" goes through the SOCKS server, names
// resolved at the proxy.
func TestPeersPACToSOCKS(t *testing.T) {
	t.Parallel()
	socks := peertest.Microsocks(t, "", "")
	srv := newPACServer(t, map[string]string{"/s.pac": fmt.Sprintf(`function FindProxyForURL(u, h) { return "SOCKS5 %s"; }`, socks)})
	ws := newEchoServer(t, false)
	var dials atomic.Int64
	d := &wsproxy.Dialer{NetDial: countingDial(&dials)}
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.MacOS, PACURL: srv.URL + "/s.pac"}})
	dialEcho(t, d, ws)
	require.EqualValues(t, 2, dials.Load(), "the PAC fetch (direct), then the SOCKS server")
}

// An HTTPS proxy: TLS to the proxy itself (OpenSSL, by socat, in front of
// tinyproxy with BasicAuth), then CONNECT inside it, then the WebSocket
// (and for wss:// a second TLS inside the tunnel). The proxy's TLS has its
// own settings (ProxyTLSConfig).
func TestPeersHTTPSProxy(t *testing.T) {
	t.Parallel()
	proxyCert := peertest.SelfSigned(t)
	tiny := peertest.Tinyproxy(t, "alice", testPassword)
	front := peertest.TLSFront(t, proxyCert, tiny)
	ws := newEchoServer(t, false)
	wss := newEchoServer(t, true)
	for _, target := range []*echoServer{ws, wss} {
		d := &wsproxy.Dialer{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "https", Host: front, User: url.UserPassword("alice", testPassword)}),
			ProxyTLSConfig:  &tls.Config{RootCAs: proxyCert.Pool},
			TLSClientConfig: tlsFor(target),
		}
		dialEcho(t, d, target)
	}
	// The proxy's certificate is checked with ProxyTLSConfig, not the
	// target's settings: without its root the dial fails.
	d := &wsproxy.Dialer{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "https", Host: front, User: url.UserPassword("alice", testPassword)}),
		TLSClientConfig: &tls.Config{RootCAs: proxyCert.Pool},
	}
	_, _, err := d.Dial(context.Background(), ws.wsURL("/"), nil)
	require.ErrorContains(t, err, "TLS handshake with proxy")

	// From a PAC answer "HTTPS host:port".
	srv := newPACServer(t, map[string]string{"/h.pac": fmt.Sprintf(`function FindProxyForURL(u, h) { return "HTTPS %s"; }`, front)})
	d = &wsproxy.Dialer{
		ProxyTLSConfig: &tls.Config{RootCAs: proxyCert.Pool},
		Credentials: func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
			return &wsproxy.Credentials{Username: "alice", Password: testPassword}, nil
		},
	}
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.KDE, PACURL: srv.URL + "/h.pac"}})
	dialEcho(t, d, ws)
}
