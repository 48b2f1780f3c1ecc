package wsproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// captures returns the real proxy answers recorded in testdata/fuzz/captures
// (tinyproxy 1.11 and squid 5.7: 200, 401, 407 with several challenges, 5xx).
func captures(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob("testdata/fuzz/captures/*.http")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no captures: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// bytesConn is a net.Conn reading from a fixed input.
type bytesConn struct {
	net.Conn
	r io.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadConnectResponse feeds arbitrary proxy answers to the response
// reader: it must not panic, must respect the header cap, and after a 2xx
// every byte past the header must reach the tunnel.
func FuzzReadConnectResponse(f *testing.F) {
	for _, c := range captures(f) {
		f.Add(c)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 407 x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 502\r\n\r\n"))
	const max = 4096
	f.Fuzz(func(t *testing.T, in []byte) {
		pc := newProxyConn(&bytesConn{r: bytes.NewReader(in)}, max)
		req := connectRequest("example.com:443", "fuzz", nil, "")
		resp, err := pc.readResponse(req)
		if err != nil {
			if errors.Is(err, ErrResponseHeaderTooLarge) && len(in) < max {
				t.Fatalf("header too large with only %d bytes of input", len(in))
			}
			return
		}
		if resp.StatusCode/100 == 2 {
			rest, _ := io.ReadAll(pc.tunnel())
			if !bytes.HasSuffix(in, rest) {
				t.Fatalf("tunnel bytes %q are not the end of the input", rest)
			}
			if header := len(in) - len(rest); header > max {
				t.Fatalf("header of %d bytes accepted over the cap of %d", header, max)
			}
			return
		}
		body, _ := drainBody(resp)
		if len(body) > maxErrorBody {
			t.Fatalf("kept %d bytes of body", len(body))
		}
	})
}

// FuzzParseChallenges checks that the parser never panics and that what it
// returns survives a round trip through the canonical form.
func FuzzParseChallenges(f *testing.F) {
	for _, c := range captures(f) {
		if resp, err := http.ReadResponse(bufioReader(c), nil); err == nil {
			for _, v := range resp.Header.Values("Proxy-Authenticate") {
				f.Add(v)
			}
		}
	}
	for _, s := range []string{
		`Digest realm="a, \"b\"", qop="auth,auth-int", algorithm=SHA-256, userhash=true`,
		"NTLM TlRMTVNTUAACAAAA==, Basic realm=x", "Negotiate", ", ,", `Basic realm="x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		chs, err := ParseChallenges([]string{in})
		if err != nil {
			return
		}
		var parts []string
		for _, ch := range chs {
			if ch.Scheme == "" {
				t.Fatalf("empty scheme from %q", in)
			}
			parts = append(parts, formatChallenge(ch))
		}
		again, err := ParseChallenges([]string{strings.Join(parts, ", ")})
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", strings.Join(parts, ", "), in, err)
		}
		if len(again) != len(chs) {
			t.Fatalf("round trip of %q: %d challenges, then %d", in, len(chs), len(again))
		}
		for i := range chs {
			if again[i].Scheme != chs[i].Scheme || again[i].Token68 != chs[i].Token68 || len(again[i].Params) != len(chs[i].Params) {
				t.Fatalf("round trip of %q changed challenge %d: %+v then %+v", in, i, chs[i], again[i])
			}
			for k, v := range chs[i].Params {
				if again[i].Params[k] != v {
					t.Fatalf("round trip of %q changed %s: %q then %q", in, k, v, again[i].Params[k])
				}
			}
		}
	})
}

// formatChallenge writes a challenge in canonical form: every value quoted.
func formatChallenge(ch Challenge) string {
	if ch.Token68 != "" {
		return ch.Scheme + " " + ch.Token68
	}
	var b strings.Builder
	b.WriteString(ch.Scheme)
	first := true
	for _, k := range sortedParamKeys(ch.Params) {
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(ch.Params[k])
		b.WriteString(k + `="` + v + `"`)
	}
	return b.String()
}

func sortedParamKeys(m map[string]string) []string {
	h := make(http.Header, len(m))
	for k := range m {
		h[k] = nil
	}
	return sortedKeys(h)
}
