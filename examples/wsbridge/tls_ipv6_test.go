package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestCertServesWSSAndWS: with --cert one port answers wss:// and ws://.
func TestCertServesWSSAndWS(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	addr, _ := startBridge(t, "--cert", cert.PEMFile, peertest.EchoServer(t))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{"wss://" + addr + "/", "ws://" + addr + "/"} {
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
		require.NoError(t, err, u)
		echoOnce(t, c, u)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	}
}

// TestTLSMinimumVersion: the bridge's TLS refuses clients that offer
// only TLS 1.0 or 1.1, and accepts 1.2 and 1.3.
func TestTLSMinimumVersion(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	addr, _ := startBridge(t, "--cert", cert.PEMFile, peertest.EchoServer(t))
	for _, tc := range []struct {
		version uint16
		ok      bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: cert.Pool, MinVersion: tc.version, MaxVersion: tc.version}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if tc.ok {
			require.NoError(t, err, tls.VersionName(tc.version))
			c.Close()
		} else {
			require.Error(t, err, tls.VersionName(tc.version))
		}
	}
}

// TestOversizedRequestHeader: a handshake whose header passes net/http's
// 1 MiB limit is refused with 431 before the bridge sees it.
func TestOversizedRequestHeader(t *testing.T) {
	t.Parallel()
	addr, _ := startBridge(t, peertest.EchoServer(t))
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	go func() {
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"X-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"))
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// TestIPv6: listen and target addresses in brackets.
func TestIPv6(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				c.Write(buf[:n])
			}()
		}
	}()
	logs := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"[::1]:0", l.Addr().String()}, logs, func(a net.Addr) { addrCh <- a.String() })
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-done:
		cancel()
		t.Fatalf("wsbridge did not start: %v\n%s", err, logs)
	}
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	require.Contains(t, addr, "[::1]:")
	c, _, err := websocket.Dial(context.Background(), "ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	echoOnce(t, c, "over IPv6")
	require.Contains(t, logs.String(), "target=[::1]:")
}
