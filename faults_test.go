package wsproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

func TestHTTPSProxy(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword, TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}})
	srv := newEchoServer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", testPassword)), ProxyTLSConfig: &tls.Config{RootCAs: cert.Pool}}
	c, _, err := d.Dial(ctx, srv.wsURL("/"), nil)
	require.NoError(t, err)
	echoOnce(t, ctx, c, websocket.MessageText, []byte("inside TLS to the proxy"))
	c.Close(websocket.StatusNormalClosure, "")

	// The same proxy without trusting its certificate: a clear TLS error,
	// and the credentials were never sent.
	before := len(p.Requests())
	d.ProxyTLSConfig = nil
	_, _, err = d.Dial(ctx, srv.wsURL("/"), nil)
	var pe *wsproxy.ProxyError
	require.ErrorAs(t, err, &pe)
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	require.True(t, errors.As(err, &cve) || errors.As(err, &uae), "want a certificate error, got %v", err)
	require.Contains(t, err.Error(), "TLS handshake with proxy")
	require.Len(t, p.Requests(), before, "no CONNECT may follow a failed TLS handshake")
}

// The target resets the connection in the middle of the stream: the
// WebSocket read fails promptly instead of hanging.
func TestTargetResetMidStream(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t, false)
	p := proxytest.New(t, proxytest.Config{TargetReset: true})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := d.Dial(ctx, srv.wsURL("/"), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte("x"))
	_, _, err = c.Read(ctx)
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "the read must fail because of the reset, not the test timeout")
}

// Real proxies report a target that refuses: tinyproxy with 500, squid
// with 503. Both become a *ProxyError with the proxy's own words.
func TestPeersTargetRefused(t *testing.T) {
	t.Parallel()
	closed := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t)) // nothing listens there
	for name, start := range map[string]func(*testing.T) string{
		"tinyproxy": func(t *testing.T) string { return peertest.Tinyproxy(t, "", "") },
		"squid":     func(t *testing.T) string { return peertest.StartSquid(t, peertest.SquidNoAuth, "", "").Addr },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: start(t)})}
			_, _, err := d.Dial(context.Background(), "ws://"+closed+"/", nil)
			var pe *wsproxy.ProxyError
			require.ErrorAs(t, err, &pe)
			require.Contains(t, []int{500, 502, 503}, pe.StatusCode, "%v", err)
			require.NotEmpty(t, pe.Body, "the proxy's explanation is kept")
		})
	}
}
