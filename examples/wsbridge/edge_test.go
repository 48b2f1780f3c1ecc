package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

func TestEdgeFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, []flagCase{
		// websockify's form: with --unix-listen there is no source port.
		{args: []string{"--unix-listen", "/run/b.sock", "h:1"}, target: "h:1"},
		{args: []string{"--unix-listen", "/run/b.sock", "--token-plugin", "TokenFile", "--token-source", "/x"}},
		// A source port as well: TCP and the socket.
		{args: []string{"--unix-listen", "/run/b.sock", "6080", "h:1"}, listen: ":6080", target: "h:1"},
		{args: []string{"--unix-listen", "/run/b.sock", "--unix-target", "/run/vnc", "6080"}, listen: ":6080"},
		{args: []string{"--unix-listen", "/run/b.sock", "--unix-listen-perm", "660", "h:1"}, target: "h:1"},
		{args: []string{"--unix-listen", "/run/b.sock"}, err: "missing target"},
		{args: []string{"--unix-listen", "/s", "--unix-listen-mode", "9", "h:1"}, err: "octal"},
		{args: []string{"--unix-listen", "/s", "--unix-listen-mode", "1777", "h:1"}, err: "octal"},
		{args: []string{"--unix-listen-mode", "600", "6080", "h:1"}, err: "needs --unix-listen"},
		{args: []string{"--proxy-protocol", "6080", "h:1"}, err: "needs --trusted-proxy"},
		{args: []string{"--trusted-proxy", "10.0.0.0/33", "6080", "h:1"}, err: "--trusted-proxy"},
		{args: []string{"--target-proxy-protocol", "v3", "6080", "h:1"}, err: "want v1 or v2"},
		{args: []string{"--proxy-protocol", "--trusted-proxy", "10.0.0.0/8,192.0.2.1", "--target-proxy-protocol", "v2", "6080", "h:1"}, listen: ":6080", target: "h:1"},
	})
	o, err := parseFlags([]string{"--unix-listen", "/s", "--unix-listen-mode", "0640", "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1", "h:1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), o.edge.unixPerm)
	assert.Len(t, o.edge.trusted, 2)
	o, err = parseFlags([]string{"--unix-listen", "/s", "h:1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), o.edge.unixPerm, "websockify's default")
}

// runInProcess runs wsbridge with exactly args until the test ends and
// returns the first listener's address and the log.
func runInProcess(t *testing.T, args ...string) (net.Addr, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs, func(a net.Addr) { addrCh <- a }) }()
	select {
	case a := <-addrCh:
		t.Cleanup(func() {
			cancel()
			assert.NoError(t, <-done)
			if t.Failed() {
				t.Logf("wsbridge log:\n%s", logs)
			}
		})
		return a, logs
	case err := <-done:
		cancel()
		t.Fatalf("wsbridge did not start: %v\n%s", err, logs)
	}
	return nil, nil
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// TestUnixListenCLI: --unix-listen alone (websockify's form) and next to
// a TCP port; the socket has the mode asked for and clients reach the
// target through it.
func TestUnixListenCLI(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "only.sock")
	addr, logs := runInProcess(t, "--unix-listen", sock, "--unix-listen-mode", "660", echo)
	assert.Equal(t, "unix", addr.Network())
	st, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o660), st.Mode().Perm())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hc := unixClient(sock)
	defer hc.CloseIdleConnections()
	c, _, err := websocket.Dial(ctx, "ws://bridge/", &websocket.DialOptions{HTTPClient: hc})
	require.NoError(t, err)
	echoOnce(t, c, "through the socket")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "remote=unix:"+sock) }, 5*time.Second, 20*time.Millisecond)

	both := filepath.Join(dir, "both.sock")
	tcp, _ := runInProcess(t, "--unix-listen", both, "--unix-listen-perm", "600", "127.0.0.1:0", echo)
	assert.Equal(t, "tcp", tcp.Network())
	c, _, err = websocket.Dial(ctx, "ws://"+tcp.String()+"/", nil)
	require.NoError(t, err)
	echoOnce(t, c, "over tcp")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	hc2 := unixClient(both)
	defer hc2.CloseIdleConnections()
	c, _, err = websocket.Dial(ctx, "ws://bridge/", &websocket.DialOptions{HTTPClient: hc2})
	require.NoError(t, err)
	echoOnce(t, c, "over the socket")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}

// TestProxyProtocolCLI: HAProxy (send-proxy-v2) in front of wsbridge
// --proxy-protocol, and another HAProxy (accept-proxy) as the target of
// --target-proxy-protocol v1: a client bound to 127.0.0.2 appears with
// its own address and port in the bridge's log and in the target's.
// Clients that skip the load balancer are refused.
func TestProxyProtocolCLI(t *testing.T) {
	t.Parallel()
	target, targetProxy := peertest.HAProxyAcceptProxy(t, peertest.EchoServer(t))
	addr, logs := startBridge(t, "--proxy-protocol", "--trusted-proxy", "127.0.0.1/32",
		"--target-proxy-protocol", "v1", target)
	front := peertest.HAProxySendProxy(t, addr, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		port := peertest.FreePort(t) // a known source port, to find it at the far end
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from), Port: port}}
		tr := &http.Transport{DialContext: d.DialContext}
		c, _, err := websocket.Dial(ctx, "ws://"+front+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		require.NoError(t, err, from)
		echoOnce(t, c, "hello from "+from)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		tr.CloseIdleConnections()
		client := net.JoinHostPort(from, strconv.Itoa(port))
		targetProxy.WaitPrinted(t, "client="+client, 10*time.Second)
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), "remote="+client+" ") }, 5*time.Second, 20*time.Millisecond)
	}

	// Straight to the bridge, from an untrusted address: refused.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	_, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}})
	require.Error(t, err)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "not from a trusted proxy") }, 5*time.Second, 20*time.Millisecond)
}

// TestCertReloadSIGHUP: the wsbridge process serves a new certificate to
// new connections after SIGHUP, while a connection opened before keeps
// working. The new pair comes in by swapping a symlink to the directory
// holding the files, which the file watch does not see (it watches the
// directory the link pointed to, which does not change): only SIGHUP can
// make the bridge read it, so the test fails if SIGHUP does nothing.
func TestCertReloadSIGHUP(t *testing.T) {
	t.Parallel()
	a, b := peertest.SelfSigned(t), peertest.SelfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(a.TLS.Leaf)
	pool.AddCert(b.TLS.Leaf)
	root := t.TempDir()
	for name, c := range map[string]*peertest.Cert{"a": a, "b": b} {
		require.NoError(t, os.Mkdir(filepath.Join(root, name), 0o700))
		copyFile(t, c.CertFile, filepath.Join(root, name, "cert.pem"))
		copyFile(t, c.KeyFile, filepath.Join(root, name, "key.pem"))
	}
	live := filepath.Join(root, "live")
	require.NoError(t, os.Symlink("a", live))
	certFile, keyFile := filepath.Join(live, "cert.pem"), filepath.Join(live, "key.pem")

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(peertest.FreePort(t)))
	p := peertest.Start(t, "wsbridge", []string{binary(t), "--cert", certFile, "--key", keyFile, addr, peertest.EchoServer(t)})
	p.WaitPrinted(t, "wsbridge: listening", 10*time.Second)

	served := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		require.NoError(t, err)
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	require.Equal(t, a.TLS.Leaf.SerialNumber.String(), served())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	defer hc.CloseIdleConnections()
	old, _, err := websocket.Dial(ctx, "wss://"+addr+"/", &websocket.DialOptions{HTTPClient: hc})
	require.NoError(t, err)
	defer old.CloseNow()
	echoOnce(t, old, "before")

	require.NoError(t, os.Symlink("b", live+".new"))
	require.NoError(t, os.Rename(live+".new", live))
	time.Sleep(time.Second) // longer than the watch's settle time
	require.Equal(t, a.TLS.Leaf.SerialNumber.String(), served(), "the swap alone changed nothing")
	require.NoError(t, p.Signal(syscall.SIGHUP))
	p.WaitPrinted(t, "SIGHUP: reading the certificate again", 5*time.Second)
	require.Eventually(t, func() bool { return served() == b.TLS.Leaf.SerialNumber.String() }, 5*time.Second, 20*time.Millisecond)
	echoOnce(t, old, "after the reload")
	require.NoError(t, old.Close(websocket.StatusNormalClosure, ""))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to+".tmp", b, 0o600))
	require.NoError(t, os.Rename(to+".tmp", to))
}

// TestForwardedHeadersCLI: --trusted-proxy believes the configured
// forwarding header from trusted peers only, and --forwarded-header
// Forwarded switches to RFC 7239's header (X-Forwarded-For is then
// ignored).
func TestForwardedHeadersCLI(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	connect := func(addr string, h http.Header) {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPHeader: h})
		require.NoError(t, err)
		echoOnce(t, c, "hi")
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	}
	waitLog := func(logs *syncBuf, s string) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), s) }, 5*time.Second, 20*time.Millisecond, s)
	}
	both := http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}, "Forwarded": {`for="[2001:db8::9]:4711"`}}

	addr, logs := startBridge(t, "--trusted-proxy", "127.0.0.1", echo)
	connect(addr, both)
	waitLog(logs, "remote=203.0.113.9 ")

	addr, logs = startBridge(t, "--trusted-proxy", "127.0.0.1", "--forwarded-header", "Forwarded", echo)
	connect(addr, both)
	waitLog(logs, "remote=[2001:db8::9]:4711 ")

	addr, logs = startBridge(t, "--trusted-proxy", "10.0.0.0/8", echo) // the client is not a trusted proxy
	connect(addr, both)
	waitLog(logs, "remote=127.0.0.1:")
	assert.NotContains(t, logs.String(), "203.0.113.9")
}
