package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// -proxy-header adds headers to every CONNECT, like curl's --proxy-header,
// and never to the WebSocket handshake.
func TestProxyHeaderFlag(t *testing.T) {
	t.Parallel()
	echo, err := startEcho()
	require.NoError(t, err)
	t.Cleanup(func() { echo.Close() })
	p := proxytest.New(t, proxytest.Config{Username: "alice", Password: "pw"})
	code, out, errOut := runWsdial(t, strings.NewReader("hi\n"), "-proxy", p.URL.String(), "-proxy-user", "alice:pw",
		"-proxy-header", "X-Corp-Id: 42", "-proxy-header", "x-trace:  a, b ", "-proxy-header", "Connection: keep-alive",
		"-linger", "2s", "ws://"+echo.Addr().String()+"/echo")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "hi\n", out)
	reqs := p.Requests()
	require.Len(t, reqs, 2, "the 407, then the CONNECT with Basic")
	for _, r := range reqs {
		require.Equal(t, "42", r.Header.Get("X-Corp-Id"))
		require.Equal(t, "a, b", r.Header.Get("X-Trace"))
		require.Equal(t, "keep-alive", r.Header.Get("Connection"))
	}
}

// Headers that would break the CONNECT exchange are refused before
// anything is sent, with exit status 2 and a message naming the header
// (never its value).
func TestProxyHeaderRefused(t *testing.T) {
	t.Parallel()
	p := proxytest.New(t, proxytest.Config{})
	for _, tc := range []struct{ header, want string }{
		{"Host: evil.example", "-proxy-header Host is refused"},
		{"content-length: 5", "-proxy-header Content-Length is refused"},
		{"Transfer-Encoding: chunked", "-proxy-header Transfer-Encoding is refused"},
		{"Connection: close", "-proxy-header Connection is refused unless its value is keep-alive"},
		{"Connection: keep-alive, Upgrade", "-proxy-header Connection is refused unless its value is keep-alive"},
		{"NoColon", `invalid -proxy-header (want "Name: value")`},
		{": value", `invalid -proxy-header (want "Name: value")`},
		{"Bad Name: x", `invalid -proxy-header name "Bad Name"`},
		{"X-Secret: s3cret\x00", "invalid -proxy-header value for X-Secret (control characters"},
	} {
		t.Run(tc.header, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runWsdial(t, strings.NewReader(""), "-proxy", p.URL.String(), "-proxy-header", tc.header, "ws://127.0.0.1:9/")
			require.Equal(t, 2, code, errOut)
			require.Contains(t, errOut, tc.want)
			require.NotContains(t, errOut, "s3cret")
		})
	}
	require.Zero(t, p.Accepts(), "nothing is sent to the proxy")
}

// FuzzParseProxyHeader: whatever -proxy-header accepts can be written in a
// CONNECT request as is (no CR, LF or NUL, a token name, none of the
// refused headers) and parses back to itself.
func FuzzParseProxyHeader(f *testing.F) {
	for _, s := range []string{"X-Corp-Id: 42", "Connection: keep-alive", "Host: x", "Connection: close", "a:\r\nb: c", ": x", "X: \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		name, value, err := parseProxyHeader(in)
		if err != nil {
			return
		}
		if strings.ContainsAny(name+value, "\r\n\x00") {
			t.Fatalf("accepted control characters: %q: %q", name, value)
		}
		switch name {
		case "Host", "Content-Length", "Transfer-Encoding":
			t.Fatalf("accepted %s", name)
		case "Connection":
			if !strings.Contains(strings.ToLower(value), "keep-alive") {
				t.Fatalf("accepted Connection: %q", value)
			}
		}
		n2, v2, err := parseProxyHeader(name + ": " + value)
		if err != nil || n2 != name || v2 != value {
			t.Fatalf("%q: %q does not parse back: %q %q %v", name, value, n2, v2, err)
		}
	})
}
