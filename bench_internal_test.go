package wsproxy

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// BenchmarkReadConnectResponse parses squid's 200 and its 407 (with body
// drained), the two answers every authenticated dial reads.
func BenchmarkReadConnectResponse(b *testing.B) {
	var ok, challenge []byte
	for _, c := range captures(b) {
		switch {
		case bytes.HasPrefix(c, []byte("HTTP/1.1 200")):
			ok = c
		case bytes.Contains(c, []byte("Proxy-Authenticate: NTLM")):
			challenge = c
		}
	}
	req := connectRequest("example.com:443", "bench", nil, "")
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"200", ok}, {"407-squid", challenge}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.in)))
			r := bytes.NewReader(tc.in)
			for b.Loop() {
				r.Reset(tc.in)
				pc := newProxyConn(&bytesConn{r: r}, DefaultMaxResponseHeaderBytes)
				resp, err := pc.readResponse(req)
				if err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					drainBody(resp)
				}
			}
		})
	}
}

// BenchmarkParseChallenges parses squid's three challenges.
func BenchmarkParseChallenges(b *testing.B) {
	values := []string{"NTLM", `Digest realm="squid-digest", nonce="dc95ae4f47771347ee2b5e86f44ac8df", qop="auth", stale=false`, `Basic realm="squid-basic"`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChallenges(values); err != nil {
			b.Fatal(err)
		}
	}
}
