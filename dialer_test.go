package wsproxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

func TestDialThroughProxy(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "ws", true: "wss"}[useTLS]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newEchoServer(t, useTLS)
			p := proxytest.New(t, proxytest.Config{Username: "alice", Password: "s3cret"})
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", "s3cret"))}
			if useTLS {
				d.TLSClientConfig = rootsFor(srv.Server)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := d.Dial(ctx, srv.wsURL("/echo?x=1"), &websocket.DialOptions{
				Subprotocols: []string{"echo"},
				HTTPHeader:   http.Header{"X-Test": {"yes"}, "Proxy-Authorization": {"Basic leak"}},
			})
			require.NoError(t, err)
			defer c.CloseNow()
			c.SetReadLimit(16 << 20)
			require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			require.Equal(t, "echo", c.Subprotocol())

			big := make([]byte, 1<<20)
			_, _ = rand.Read(big)
			echoOnce(t, ctx, c, websocket.MessageBinary, big)
			echoOnce(t, ctx, c, websocket.MessageText, []byte("hello"))
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

			// The proxy saw CONNECT with the explicit port, never a GET:
			// first without credentials, then (after its Basic challenge)
			// with them.
			reqs := p.Requests()
			require.Len(t, reqs, 2)
			require.Empty(t, reqs[0].Header.Get("Proxy-Authorization"), "no password before the proxy asks for Basic")
			for _, r := range reqs {
				require.Equal(t, http.MethodConnect, r.Method)
				require.Equal(t, strings.TrimPrefix(srv.URL, "http"+map[bool]string{false: "", true: "s"}[useTLS]+"://"), r.Host)
				require.Equal(t, "Keep-Alive", r.Header.Get("Proxy-Connection"))
				require.Equal(t, "wsproxy", r.Header.Get("User-Agent"))
			}

			// The target saw the handshake with the user's header, and no
			// proxy credentials.
			sreqs := srv.requests()
			require.Len(t, sreqs, 1)
			require.Equal(t, "/echo", sreqs[0].URL.Path)
			require.Equal(t, "yes", sreqs[0].Header.Get("X-Test"))
			require.Empty(t, sreqs[0].Header.Get("Proxy-Authorization"))
		})
	}
}

func TestDialDirectWhenProxyReturnsNil(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t, false)
	d := &wsproxy.Dialer{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := d.Dial(ctx, srv.wsURL("/"), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	echoOnce(t, ctx, c, websocket.MessageText, []byte("direct"))
}

func TestProxyFuncSeesHTTPSchemes(t *testing.T) {
	t.Parallel()
	var seen []string
	d := &wsproxy.Dialer{Proxy: func(r *http.Request) (*url.URL, error) {
		seen = append(seen, r.URL.String())
		return nil, errors.New("stop here")
	}}
	ctx := context.Background()
	_, _, err := d.Dial(ctx, "ws://example.com/a?b=c", nil)
	require.ErrorContains(t, err, "stop here")
	_, _, err = d.Dial(ctx, "wss://example.com:8443/x", nil)
	require.ErrorContains(t, err, "stop here")
	require.Equal(t, []string{"http://example.com/a?b=c", "https://example.com:8443/x"}, seen)
}

func TestDialContextAsTransport(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t, false)
	hs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "plain http ok") })
	srv.Config.Handler = hs
	p := proxytest.New(t, proxytest.Config{})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL)}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "plain http ok", string(body))
	require.Len(t, p.Requests(), 1)
	require.Equal(t, http.MethodConnect, p.Requests()[0].Method)
}

// The proxy sends its 200 and the target's first bytes in one segment: the
// tunnel must deliver those bytes.
func TestEarlyTargetBytesAreKept(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	banner := []byte("RFB 003.008\n")
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(banner)
		_, _ = io.Copy(c, c)
	}()
	p := proxytest.New(t, proxytest.Config{CoalesceFirstBytes: 2 * time.Second})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL)}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	got := make([]byte, len(banner))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, banner, got)
	_, err = c.Write([]byte("after"))
	require.NoError(t, err)
	got = make([]byte, 5)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "after", string(got))
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	d := &wsproxy.Dialer{}
	ctx := context.Background()
	_, _, err := d.Dial(ctx, "ftp://example.com/", nil)
	require.ErrorContains(t, err, `unsupported URL scheme "ftp"`)
	_, _, err = d.Dial(ctx, "ws:///path", nil)
	require.ErrorContains(t, err, "no host")
	_, _, err = d.Dial(ctx, "ws://example.com/", &websocket.DialOptions{HTTPClient: http.DefaultClient})
	require.ErrorContains(t, err, "HTTPClient must be nil")
	_, err = d.DialContext(ctx, "udp", "example.com:53")
	require.ErrorContains(t, err, "tcp only")
}

func TestProxyRefusesTarget(t *testing.T) {
	t.Parallel()
	// A port with nothing listening: the proxy answers 502.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	p := proxytest.New(t, proxytest.Config{})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL)}
	_, _, err = d.Dial(context.Background(), "ws://"+addr+"/", nil)
	var pe *wsproxy.ProxyError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 502, pe.StatusCode)
	require.Equal(t, "Bad Gateway", pe.Status)
	require.Equal(t, addr, pe.Target)
	require.True(t, bytes.Equal(pe.Body, nil) || len(pe.Body) == 0)
}
