package wsproxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
)

// scriptedProxy accepts connections, reads one request header and hands the
// raw request text to script, which answers however it likes. It returns
// the proxy URL.
func scriptedProxy(t *testing.T, script func(c net.Conn, request string)) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				var req strings.Builder
				for {
					line, err := br.ReadString('\n')
					req.WriteString(line)
					if err != nil || line == "\r\n" {
						break
					}
				}
				script(c, req.String())
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

func answer(s string) func(net.Conn, string) {
	return func(c net.Conn, _ string) { _, _ = io.WriteString(c, s) }
}

func TestConnectRequestFormat(t *testing.T) {
	t.Parallel()
	got := make(chan string, 4)
	pu := scriptedProxy(t, func(c net.Conn, req string) {
		got <- req
		_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
	})
	d := &wsproxy.Dialer{
		Proxy:              http.ProxyURL(pu),
		ProxyConnectHeader: http.Header{"X-Corp-Id": {"42"}},
		UserAgent:          "test-agent/1",
	}
	for _, tc := range []struct{ url, authority string }{
		{"ws://example.com/path", "example.com:80"},
		{"wss://example.com/path", "example.com:443"},
		{"ws://[2001:db8::1]/x", "[2001:db8::1]:80"},
		{"wss://[2001:db8::1]:8443/x", "[2001:db8::1]:8443"},
	} {
		_, _, err := d.Dial(context.Background(), tc.url, nil)
		var pe *wsproxy.ProxyError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, 403, pe.StatusCode)
		req := <-got
		require.True(t, strings.HasPrefix(req, "CONNECT "+tc.authority+" HTTP/1.1\r\nHost: "+tc.authority+"\r\n"), "request:\n%s", req)
		require.Contains(t, req, "User-Agent: test-agent/1\r\n")
		require.Contains(t, req, "Proxy-Connection: Keep-Alive\r\n")
		require.Contains(t, req, "X-Corp-Id: 42\r\n")
		require.NotContains(t, req, "GET ")
	}
}

func TestConnectRefusesHeaderInjection(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	pu := scriptedProxy(t, func(c net.Conn, req string) { got <- req })
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(pu), ProxyConnectHeader: http.Header{"X-Evil": {"a\r\nProxy-Authorization: Basic x"}}}
	_, err := d.DialContext(context.Background(), "tcp", "example.com:443")
	require.ErrorContains(t, err, "contains CR or LF")
	select {
	case req := <-got:
		require.Empty(t, strings.TrimSpace(req), "nothing may be sent")
	case <-time.After(100 * time.Millisecond):
	}
}

// faultCase is one misbehaving proxy answer and what the Dialer must make
// of it.
type faultCase struct {
	name    string
	script  func(net.Conn, string)
	timeout time.Duration // Dialer.ConnectTimeout; 0 = 5 s
	trace   string        // a line the Dialer's trace must contain
	check   func(t *testing.T, conn net.Conn, err error)
}

func (f faultCase) String() string { return f.name }

func wantProxyError(status int, is error, contains string) func(*testing.T, net.Conn, error) {
	return func(t *testing.T, _ net.Conn, err error) {
		t.Helper()
		var pe *wsproxy.ProxyError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, status, pe.StatusCode, "%v", err)
		if is != nil {
			require.ErrorIs(t, err, is)
		}
		require.Contains(t, err.Error(), contains)
	}
}

func TestConnectResponses(t *testing.T) {
	t.Parallel()
	cases := []faultCase{
		{name: "HTTP/1.0 200", script: answer("HTTP/1.0 200 Connection established\r\n\r\n"),
			check: func(t *testing.T, c net.Conn, err error) { require.NoError(t, err) }},
		{name: "interim 100 Continue before the 200", script: answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbanner"),
			check: func(t *testing.T, c net.Conn, err error) {
				require.NoError(t, err)
				b := make([]byte, 6)
				_, err = io.ReadFull(c, b)
				require.NoError(t, err)
				require.Equal(t, "banner", string(b))
			}},
		{name: "any 2xx", script: answer("HTTP/1.1 204 Fine\r\nX: y\r\n\r\n"),
			check: func(t *testing.T, c net.Conn, err error) { require.NoError(t, err) }},
		{name: "200 with Content-Length: the bytes belong to the tunnel",
			script: answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
			check: func(t *testing.T, c net.Conn, err error) {
				require.NoError(t, err)
				b := make([]byte, 5)
				_, err = io.ReadFull(c, b)
				require.NoError(t, err)
				require.Equal(t, "hello", string(b))
			}},
		{name: "200 with Connection: close is still a tunnel",
			script: answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbanner"),
			check: func(t *testing.T, c net.Conn, err error) {
				require.NoError(t, err)
				b, _ := io.ReadAll(c)
				require.Equal(t, "banner", string(b))
			}},
		{name: "403 keeps 1 KiB of body", script: answer("HTTP/1.1 403 Forbidden\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("x", 5000)),
			check: func(t *testing.T, _ net.Conn, err error) {
				wantProxyError(403, nil, "403 Forbidden")(t, nil, err)
				var pe *wsproxy.ProxyError
				errors.As(err, &pe)
				require.Len(t, pe.Body, 1024)
			}},
		{name: "bare status line", script: answer("HTTP/1.1 502\r\n\r\n"), check: wantProxyError(502, nil, "502")},
		{name: "closed before the status line", script: func(net.Conn, string) {},
			check: wantProxyError(0, io.ErrUnexpectedEOF, "before a complete response header")},
		{name: "closed after the status line", script: answer("HTTP/1.1 200 OK\r\n"),
			check: wantProxyError(0, io.ErrUnexpectedEOF, "before a complete response header")},
		{name: "closed in the middle of the headers", script: answer("HTTP/1.1 200 OK\r\nX-A: b\r\nX-Par"),
			check: wantProxyError(0, io.ErrUnexpectedEOF, "before a complete response header")},
		{name: "garbage instead of HTTP", script: answer("SSH-2.0-OpenSSH_9.2\r\n\r\n"),
			check: wantProxyError(0, nil, "malformed proxy response")},
		{name: "1 MiB header", script: func(c net.Conn, _ string) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")
		}, check: wantProxyError(0, wsproxy.ErrResponseHeaderTooLarge, "too large")},
		{name: "10,000 header lines", script: func(c net.Conn, _ string) {
			var b strings.Builder
			b.WriteString("HTTP/1.1 200 OK\r\n")
			for i := 0; i < 10000; i++ {
				fmt.Fprintf(&b, "X-%d: v\r\n", i)
			}
			b.WriteString("\r\n")
			_, _ = io.WriteString(c, b.String())
		}, check: wantProxyError(0, wsproxy.ErrResponseHeaderTooLarge, "too large")},
		{name: "one byte at a time, too slowly", timeout: 300 * time.Millisecond, script: func(c net.Conn, _ string) {
			for _, b := range []byte("HTTP/1.1 200 OK\r\n\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, check: wantProxyError(0, context.DeadlineExceeded, "connect timeout (300ms)")},
		{name: "407 forever", script: func(c net.Conn, _ string) {
			br := bufio.NewReader(c)
			for {
				if _, err := io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n"); err != nil {
					return
				}
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
			}
		}, check: wantProxyError(407, wsproxy.ErrProxyCredentialsRejected, "rejected")},
		{name: "401 without credentials sent", script: answer("HTTP/1.0 401 Unauthorized\r\n\r\n"),
			check: wantProxyError(401, nil, "401 Unauthorized")},
		// A malformed challenge is reported with what was received and why
		// it could not be used, not as a 407 without any challenge.
		{name: "407 with a malformed challenge",
			script: answer("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic \"oh please\"\r\nContent-Length: 0\r\n\r\n"),
			check: func(t *testing.T, _ net.Conn, err error) {
				wantProxyError(407, wsproxy.ErrProxyAuthRequired, `challenge could not be used: parse Proxy-Authenticate "Basic \"oh please\"": at offset 6: expected a token68 or an auth-param`)(t, nil, err)
				require.NotContains(t, err.Error(), "without a Proxy-Authenticate challenge")
			}},
		{name: "407 with NTLM and a malformed Basic",
			script: answer("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic realm=\"x\" junk\r\nContent-Length: 0\r\n\r\n"),
			check:  wantProxyError(407, wsproxy.ErrProxyAuthRequired, `(offered: Negotiate; could not use the rest: parse Proxy-Authenticate "Basic realm=\"x\" junk"`)},
	}
	// A refusal with Connection: close and no body length, the socket left
	// open: the Dialer reads what has arrived and fails at once with the
	// status, and its trace shows the status line.
	for _, status := range []string{"400 Bad Request", "403 Forbidden", "405 Method Not Allowed", "502 Bad Gateway", "407 Proxy Authentication Required"} {
		code, _ := strconv.Atoi(status[:3])
		cases = append(cases, faultCase{name: status + " with Connection: close, socket left open",
			script: func(c net.Conn, _ string) {
				_, _ = io.WriteString(c, "HTTP/1.1 "+status+"\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<h1>refused</h1>")
				_, _ = io.Copy(io.Discard, c) // never closes
			},
			trace: "<- HTTP/1.1 " + status,
			check: func(t *testing.T, _ net.Conn, err error) {
				wantProxyError(code, nil, status)(t, nil, err)
				require.NotErrorIs(t, err, context.DeadlineExceeded)
				var pe *wsproxy.ProxyError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, "<h1>refused</h1>", string(pe.Body), "what had arrived is kept")
			}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pu := scriptedProxy(t, tc.script)
			if tc.name == "407 forever" {
				pu.User = url.UserPassword("alice", "pw")
			}
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(pu), ConnectTimeout: tc.timeout, Logf: logs.Logf}
			if d.ConnectTimeout == 0 {
				d.ConnectTimeout = 5 * time.Second
			}
			start := time.Now()
			c, err := d.DialContext(context.Background(), "tcp", "target.example:443")
			t.Logf("%s: %v", tc.name, time.Since(start)) // speed is logged, not asserted
			if c != nil {
				defer c.Close()
			}
			tc.check(t, c, err)
			if tc.trace != "" {
				require.Contains(t, logs.String(), tc.trace)
			}
		})
	}
}

func TestConnectCancelUnblocksRead(t *testing.T) {
	t.Parallel()
	pu := scriptedProxy(t, func(c net.Conn, _ string) { _, _ = io.Copy(io.Discard, c) })
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(pu)}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := d.DialContext(ctx, "tcp", "target.example:443")
	require.ErrorIs(t, err, context.Canceled)
}

func TestConnectRespectsCallerDeadline(t *testing.T) {
	t.Parallel()
	pu := scriptedProxy(t, func(c net.Conn, _ string) { _, _ = io.Copy(io.Discard, c) })
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(pu)}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := d.DialContext(ctx, "tcp", "target.example:443")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "connect timeout", "the caller's deadline, not the Dialer's, ended it")
}

// Headers that would break the exchange are refused by the Dialer itself,
// before anything reaches the proxy, not only by wsdial's flag parser
// (where the rule used to live): a library user setting
// ProxyConnectHeader gets the same protection.
func TestConnectRefusesHeadersThatBreakTheExchange(t *testing.T) {
	t.Parallel()
	got := make(chan string, 4)
	pu := scriptedProxy(t, func(c net.Conn, req string) { got <- req })
	for _, tc := range []struct {
		name, value, problem string
	}{
		{"Content-Length", "987654321", "refused"},
		{"transfer-encoding", "chunked", "refused"},
		{"Host", "evil.example", "refused"},
		{"Connection", "keep-alive, close", "keep-alive only"},
		{"Bad Name", "s3cret-value", "invalid name"},
	} {
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(pu), ProxyConnectHeader: http.Header{tc.name: {tc.value}}}
		_, err := d.DialContext(context.Background(), "tcp", "example.com:443")
		var he *wsproxy.ConnectHeaderError
		require.ErrorAs(t, err, &he, tc.name)
		require.Equal(t, tc.problem, he.Problem, tc.name)
		require.NotContains(t, err.Error(), tc.value, "the value is never quoted")
	}
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(pu), ProxyConnectHeader: http.Header{"Connection": {"Keep-Alive"}}}
	_, err := d.DialContext(context.Background(), "tcp", "example.com:443")
	require.NotErrorAs(t, err, new(*wsproxy.ConnectHeaderError), "keep-alive is allowed")
	select {
	case req := <-got: // the one allowed dial
		require.Contains(t, req, "Connection: Keep-Alive")
	case <-time.After(5 * time.Second):
		t.Fatal("the allowed header never reached the proxy")
	}
	require.Empty(t, got, "a refused header reached the proxy")
}
