package proxyurl

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFromHostPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ scheme, host, port, want string }{
		{"http", "proxy", "3128", "http://proxy:3128"},
		{"http", "proxy:8080", "", "http://proxy:8080"},
		{"http", "proxy:8080", "0", "http://proxy:8080"},
		{"http", "socks://s:1080", "", "socks5h://s:1080"},
		{"http", "HTTPS://p/", "443", "https://p:443"},
		{"http", "::1", "3128", "http://[::1]:3128"},
		{"http", "[::1]", "", "http://[::1]"},
		{"http", " ", "1", ""},
		{"http", "[]", "1", ""},
	} {
		got := FromHostPort(tc.scheme, tc.host, tc.port)
		if tc.want == "" {
			require.Nil(t, got, "%+v", tc)
			continue
		}
		require.Equal(t, tc.want, got.String(), "%+v", tc)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "direct", Redact(nil))
	require.Equal(t, "http://alice:xxxxx@p:1", Redact(&url.URL{Scheme: "http", User: url.UserPassword("alice", "s3cret"), Host: "p:1"}))
	require.Equal(t, "http://alice:xxxxx@p:1/x.pac", RedactString("http://alice:s3cret@p:1/x.pac"))
	require.Equal(t, "(invalid URL)", RedactString("http://alice:s3cret@p:1/%zz"))
	require.Equal(t, "https://h/p?q", HTTPScheme(&url.URL{Scheme: "wss", Host: "h", Path: "/p", RawQuery: "q"}).String())
}

func TestMatchGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*.example", "a.example", true},
		{"*.example", "example", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"[x]", "x", false}, // brackets are literal
	} {
		require.Equal(t, tc.want, MatchGlob(tc.pattern, tc.s), "%+v", tc)
	}
}
