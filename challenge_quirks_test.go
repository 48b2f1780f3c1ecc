package wsproxy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
)

// Challenges as real proxies send them, and what the Digest code makes of
// them (TestParseChallenges covers the RFC 7235 grammar itself).
func TestChallengeQuirks(t *testing.T) {
	t.Parallel()
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []challengeCase{
		{name: "squid digest: no algorithm, no opaque, unquoted stale",
			in:   []string{`Digest realm="squid-digest", nonce="Zm9vYmFy", qop="auth", stale=false`},
			want: []wsproxy.Challenge{{Scheme: "Digest", Params: p("realm", "squid-digest", "nonce", "Zm9vYmFy", "qop", "auth", "stale", "false")}}},
		{name: "unquoted algorithm and qop, upper-case stale",
			in:   []string{`Digest realm="r", nonce="n", algorithm=MD5-sess, qop=auth, stale=TRUE`},
			want: []wsproxy.Challenge{{Scheme: "Digest", Params: p("realm", "r", "nonce", "n", "algorithm", "MD5-sess", "qop", "auth", "stale", "TRUE")}}},
		{name: "two Digest challenges, SHA-256 and MD5, in one header",
			in: []string{`Digest realm="r", nonce="a", algorithm=SHA-256, qop="auth", Digest realm="r", nonce="b", algorithm=MD5, qop="auth"`},
			want: []wsproxy.Challenge{
				{Scheme: "Digest", Params: p("realm", "r", "nonce", "a", "algorithm", "SHA-256", "qop", "auth")},
				{Scheme: "Digest", Params: p("realm", "r", "nonce", "b", "algorithm", "MD5", "qop", "auth")}}},
		{name: "squid NTLM instance: bare NTLM then Basic in separate headers",
			in:   []string{"NTLM", `Basic realm="squid-basic"`},
			want: []wsproxy.Challenge{{Scheme: "NTLM"}, {Scheme: "Basic", Params: p("realm", "squid-basic")}}},
		{name: "NTLM type-2 token with padding",
			in:   []string{"NTLM TlRMTVNTUAACAAAACQAJAK6qqqoHggiimK52WCf4ZFgAAAAAAAA6AFdPUktHUk9VUA=="},
			want: []wsproxy.Challenge{{Scheme: "NTLM", Token68: "TlRMTVNTUAACAAAACQAJAK6qqqoHggiimK52WCf4ZFgAAAAAAAA6AFdPUktHUk9VUA=="}}},
		{name: "lower-case scheme, tab separators",
			in:   []string{"digest\trealm=\"r\",\tnonce=\"n\""},
			want: []wsproxy.Challenge{{Scheme: "digest", Params: p("realm", "r", "nonce", "n")}}},
		{name: "userhash and charset",
			in:   []string{`Digest realm="api", nonce="n", algorithm=SHA-512-256, charset=UTF-8, userhash=true, qop="auth"`},
			want: []wsproxy.Challenge{{Scheme: "Digest", Params: p("realm", "api", "nonce", "n", "algorithm", "SHA-512-256", "charset", "UTF-8", "userhash", "true", "qop", "auth")}}},
		{name: "empty realm", in: []string{`Basic realm=""`},
			want: []wsproxy.Challenge{{Scheme: "Basic", Params: p("realm", "")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := wsproxy.ParseChallenges(tc.in)
			require.NoError(t, err, tc.String())
			require.Equal(t, tc.want, got, tc.String())
		})
	}
	// Digest answers every Digest challenge above, ranked by algorithm.
	var d wsproxy.DigestAuth
	for _, tc := range cases {
		got, _ := wsproxy.ParseChallenges(tc.in)
		for _, ch := range got {
			if ch.Scheme != "Digest" && ch.Scheme != "digest" {
				continue
			}
			require.Positive(t, d.Strength(ch), tc.String())
		}
	}
}
