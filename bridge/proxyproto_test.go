package bridge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// remotes records ConnInfo.Remote of each connection through OpenTap.
type remotes struct {
	mu   sync.Mutex
	seen []string
}

func (r *remotes) open(ci bridge.ConnInfo) (bridge.Tap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, ci.Remote)
	return nil, nil
}

func (r *remotes) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// proxiedBridge serves a Handler relaying to target on a Listener with
// lopts (ProxyProtocol, TLS...); it returns the address, the Handler's
// and Listener's log, and the recorded remotes.
func proxiedBridge(t *testing.T, target string, lopts bridge.ListenerOptions, tune func(*bridge.Handler)) (string, *logBuffer, *remotes) {
	t.Helper()
	logs, rem := &logBuffer{}, &remotes{}
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Logger: slogTo(logs), OpenTap: rem.open}
	if tune != nil {
		tune(h)
	}
	lopts.Logger = slogTo(logs)
	l, err := bridge.Listen("tcp", "127.0.0.1:0", &lopts)
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		_ = h.Shutdown(context.Background())
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs)
		}
	})
	return l.Addr().String(), logs, rem
}

// dialFrom opens a WebSocket to addr from the local IP from (empty: any),
// writing prefix (a PROXY header) first, with TLS when tlsConf is set.
func dialFrom(ctx context.Context, addr, from string, prefix []byte, tlsConf *tls.Config) (*websocket.Conn, error) {
	d := &net.Dialer{}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(prefix); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	tr := &http.Transport{DialContext: dial, DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := dial(ctx, network, a)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}}
	defer tr.CloseIdleConnections()
	scheme := "ws://"
	if tlsConf != nil {
		scheme = "wss://"
	}
	c, _, err := websocket.Dial(ctx, scheme+addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	return c, err
}

func echoCheck(t *testing.T, ctx context.Context, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte(msg)))
	_, got, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
}

func header(t *testing.T, version byte, src, dst string) []byte {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	b, err := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(s), net.TCPAddrFromAddrPort(d)).Format()
	require.NoError(t, err)
	return b
}

// TestListenerProxyProtocol: headers written by go-proxyproto give the
// connection its client address (plain and TLS after the header); peers
// outside the trusted networks are refused with and without a header, a
// trusted peer without one too.
func TestListenerProxyProtocol(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	addr, logs, rem := proxiedBridge(t, peertest.EchoServer(t), bridge.ListenerOptions{
		ProxyProtocol: &bridge.ProxyProtocolPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		TLSConfig:     &tls.Config{Certificates: []tls.Certificate{cert.TLS}}, PeekTimeout: 2 * time.Second,
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := dialFrom(ctx, addr, "127.0.0.1", header(t, 1, "198.51.100.7:4242", "203.0.113.1:443"), nil)
	require.NoError(t, err)
	echoCheck(t, ctx, c, "v1 plain")
	c.Close(websocket.StatusNormalClosure, "")

	c, err = dialFrom(ctx, addr, "127.0.0.1", header(t, 2, "[2001:db8::7]:5555", "[2001:db8::1]:443"), &tls.Config{RootCAs: cert.Pool, ServerName: "localhost"})
	require.NoError(t, err)
	echoCheck(t, ctx, c, "v2 tls")
	c.Close(websocket.StatusNormalClosure, "")

	// A v2 LOCAL header (a proxy's own health check) keeps the socket's
	// address.
	local, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	require.NoError(t, err)
	c, err = dialFrom(ctx, addr, "127.0.0.1", local, nil)
	require.NoError(t, err)
	echoCheck(t, ctx, c, "local")
	c.Close(websocket.StatusNormalClosure, "")

	require.Eventually(t, func() bool { return len(rem.list()) == 3 }, 5*time.Second, 10*time.Millisecond)
	got := rem.list()
	assert.Equal(t, "198.51.100.7:4242", got[0])
	assert.Equal(t, "[2001:db8::7]:5555", got[1])
	assert.True(t, strings.HasPrefix(got[2], "127.0.0.1:"), got[2])
	assert.Contains(t, logs.String(), "remote=198.51.100.7:4242 ")

	for _, tc := range []struct {
		name, from string
		prefix     []byte
		reason     string
	}{
		{"untrusted with a header", "127.0.0.2", header(t, 1, "198.51.100.66:1", "203.0.113.1:443"), "not from a trusted proxy"},
		{"untrusted without a header", "127.0.0.3", nil, "not from a trusted proxy"},
		{"trusted without a header", "127.0.0.1", nil, "no PROXY header from a trusted proxy"},
		{"trusted with a broken header", "127.0.0.1", []byte("PROXY TCP4 1.2.3\r\n"), "reading the header"},
	} {
		_, err := dialFrom(ctx, addr, tc.from, tc.prefix, nil)
		require.Error(t, err, tc.name)
		logs.waitLog(t, tc.reason)
	}
	assert.NotContains(t, strings.Join(rem.list(), " "), "198.51.100.66")
}

// TestListenerProxyProtocolSlowloris: a trusted peer that never finishes
// its header is closed after PeekTimeout.
func TestListenerProxyProtocolSlowloris(t *testing.T) {
	t.Parallel()
	addr, logs, _ := proxiedBridge(t, peertest.EchoServer(t), bridge.ListenerOptions{
		ProxyProtocol: &bridge.ProxyProtocolPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		PeekTimeout:   300 * time.Millisecond,
	}, nil)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("PROXY TCP4 "))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the bridge closes the connection")
	logs.waitLog(t, "connection refused")
}

// TestHAProxySendsProxyToBridge: HAProxy (send-proxy and send-proxy-v2)
// in front of the bridge; clients bound to 127.0.0.2 and 127.0.0.3 are
// seen by their own addresses in ConnInfo.Remote and in the log lines,
// and a bridge that does not trust HAProxy refuses its connections.
func TestHAProxySendsProxyToBridge(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			t.Parallel()
			addr, logs, rem := proxiedBridge(t, echo, bridge.ListenerOptions{
				ProxyProtocol: &bridge.ProxyProtocolPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			}, nil)
			front := peertest.HAProxySendProxy(t, addr, version)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
				c, err := dialFrom(ctx, front, from, nil, nil)
				require.NoError(t, err, from)
				echoCheck(t, ctx, c, "hello from "+from)
				c.Close(websocket.StatusNormalClosure, "")
			}
			require.Eventually(t, func() bool { return len(rem.list()) == 2 }, 5*time.Second, 10*time.Millisecond)
			got := rem.list()
			assert.True(t, strings.HasPrefix(got[0], "127.0.0.2:"), got[0])
			assert.True(t, strings.HasPrefix(got[1], "127.0.0.3:"), got[1])
			logs.waitLog(t, "remote=127.0.0.2:")
			logs.waitLog(t, "remote=127.0.0.3:")

			// The same HAProxy in front of a bridge that trusts another
			// network: its headers are not believed, the connection is
			// refused.
			strict, strictLogs, strictRem := proxiedBridge(t, echo, bridge.ListenerOptions{
				ProxyProtocol: &bridge.ProxyProtocolPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			}, nil)
			front2 := peertest.HAProxySendProxy(t, strict, version)
			_, err := dialFrom(ctx, front2, "127.0.0.2", nil, nil)
			require.Error(t, err)
			strictLogs.waitLog(t, "not from a trusted proxy")
			assert.Empty(t, strictRem.list())
		})
	}
}

// proxyTarget accepts one connection, reads its PROXY header with
// go-proxyproto, echoes the rest, and sends the header on the channel.
func proxyTarget(t *testing.T) (string, <-chan *proxyproto.Header) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan *proxyproto.Header, 4)
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
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				h, err := proxyproto.Read(br)
				if err != nil {
					t.Errorf("target: %v", err)
					return
				}
				got <- h
				_, _ = io.Copy(c, br)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String(), got
}

// TestTargetProxyProtocolHeaders: the header the target reads (parsed by
// go-proxyproto) names the client's real address, from the socket or
// from a trusted X-Forwarded-For, for v1 and v2.
func TestTargetProxyProtocolHeaders(t *testing.T) {
	t.Parallel()
	for _, version := range []bridge.ProxyProtocolVersion{bridge.ProxyProtocolV1, bridge.ProxyProtocolV2} {
		t.Run(fmt.Sprint(version), func(t *testing.T) {
			t.Parallel()
			target, headers := proxyTarget(t)
			addr, _, _ := proxiedBridge(t, target, bridge.ListenerOptions{}, func(h *bridge.Handler) {
				h.TargetProxyProtocol = version
				h.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			c, err := dialFrom(ctx, addr, "127.0.0.2", nil, nil)
			require.NoError(t, err)
			echoCheck(t, ctx, c, "direct")
			c.Close(websocket.StatusNormalClosure, "")
			h := <-headers
			assert.Equal(t, byte(version), h.Version)
			src, dst, ok := h.TCPAddrs()
			require.True(t, ok)
			assert.Equal(t, "127.0.0.2", src.IP.String())
			assert.Equal(t, addr, dst.String())

			// From the trusted proxy at 127.0.0.1 with X-Forwarded-For
			// naming an IPv6 client: the header carries it (IPv6, the
			// bridge's IPv4 address mapped), port 0.
			hdr := http.Header{"X-Forwarded-For": {"10.9.9.9, 2001:db8::42"}}
			c, _, err = websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPHeader: hdr})
			require.NoError(t, err)
			echoCheck(t, ctx, c, "forwarded")
			c.Close(websocket.StatusNormalClosure, "")
			h = <-headers
			src, _, ok = h.TCPAddrs()
			require.True(t, ok)
			assert.Equal(t, "2001:db8::42", src.IP.String())
			assert.Equal(t, 0, src.Port)
		})
	}
}

// TestTargetProxyProtocolUnknownClient: a client of a Unix-socket
// listener has no IP; the target gets PROXY UNKNOWN (v1) or LOCAL (v2).
func TestTargetProxyProtocolUnknownClient(t *testing.T) {
	t.Parallel()
	for _, version := range []bridge.ProxyProtocolVersion{bridge.ProxyProtocolV1, bridge.ProxyProtocolV2} {
		t.Run(fmt.Sprint(version), func(t *testing.T) {
			t.Parallel()
			target, headers := proxyTarget(t)
			rem := &remotes{}
			h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Logger: slog0(t),
				TargetProxyProtocol: version, OpenTap: rem.open}
			sock := t.TempDir() + "/b.sock"
			l, err := bridge.ListenUnix(sock, 0o600)
			require.NoError(t, err)
			srv := &http.Server{Handler: h}
			done := make(chan struct{})
			go func() { defer close(done); _ = srv.Serve(l) }()
			defer func() { _ = srv.Close(); <-done; _ = h.Shutdown(context.Background()) }()

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := dialUnix(t, ctx, sock)
			echoCheck(t, ctx, c, "over unix")
			c.Close(websocket.StatusNormalClosure, "")
			hdr := <-headers
			assert.Equal(t, proxyproto.LOCAL, hdr.Command)
			assert.Equal(t, proxyproto.UNSPEC, hdr.TransportProtocol)
			assert.Equal(t, []string{"unix:" + sock}, rem.list())
		})
	}
}

func dialUnix(t *testing.T, ctx context.Context, sock string) *websocket.Conn {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c, _, err := websocket.Dial(ctx, "ws://bridge/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	return c
}

// TestTargetProxyProtocolHAProxy: a real PROXY receiver (HAProxy with
// accept-proxy) as the target reads the client's own address, for v1
// and v2.
func TestTargetProxyProtocolHAProxy(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	for _, version := range []bridge.ProxyProtocolVersion{bridge.ProxyProtocolV1, bridge.ProxyProtocolV2} {
		t.Run(fmt.Sprint(version), func(t *testing.T) {
			t.Parallel()
			target, haproxy := peertest.HAProxyAcceptProxy(t, echo)
			addr, _, _ := proxiedBridge(t, target, bridge.ListenerOptions{}, func(h *bridge.Handler) {
				h.TargetProxyProtocol = version
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				tr := &http.Transport{DialContext: d.DialContext}
				c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
				require.NoError(t, err)
				echoCheck(t, ctx, c, "through haproxy from "+from)
				c.Close(websocket.StatusNormalClosure, "")
				tr.CloseIdleConnections()
				haproxy.WaitPrinted(t, "client="+from+":", 10*time.Second)
			}
		})
	}
}

func TestParseProxyProtocolVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bridge.ProxyProtocolVersion{"v1": 1, "V2": 2, "1": 1, " 2 ": 2} {
		got, err := bridge.ParseProxyProtocolVersion(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := bridge.ParseProxyProtocolVersion("v3")
	require.ErrorIs(t, err, bridge.ErrProxyProtocol)
}

// bufConn reads through a bufio.Reader that may hold bytes already.
type bufConn struct {
	net.Conn
	br *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// TestTargetProxyProtocolBeforeTLS: with TargetTLS the PROXY header comes
// first, in clear, and the TLS handshake after it.
func TestTargetProxyProtocolBeforeTLS(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err != nil {
			got <- "no header: " + err.Error()
			return
		}
		got <- h.SourceAddr.String()
		tc := tls.Server(bufConn{Conn: c, br: br}, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
		_, _ = io.Copy(tc, tc)
	}()
	t.Cleanup(func() { l.Close(); <-done })

	addr, _, _ := proxiedBridge(t, l.Addr().String(), bridge.ListenerOptions{}, func(h *bridge.Handler) {
		h.TargetProxyProtocol = bridge.ProxyProtocolV1
		h.TargetTLS = &tls.Config{RootCAs: cert.Pool}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialFrom(ctx, addr, "127.0.0.2", nil, nil)
	require.NoError(t, err)
	defer c.CloseNow()
	echoCheck(t, ctx, c, "tls after the header")
	assert.True(t, strings.HasPrefix(<-got, "127.0.0.2:"))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}
