package wsproxy_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
)

type challengeCase struct {
	name    string
	in      []string
	want    []wsproxy.Challenge
	wantErr bool
}

func (c challengeCase) String() string { return fmt.Sprintf("%s: %q", c.name, c.in) }

func TestParseChallenges(t *testing.T) {
	t.Parallel()
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []challengeCase{
		{name: "basic", in: []string{`Basic realm="Tinyproxy"`},
			want: []wsproxy.Challenge{{Scheme: "Basic", Params: p("realm", "Tinyproxy")}}},
		{name: "squid digest", in: []string{`Digest realm="squid-digest", nonce="AbC+/=", qop="auth", stale=false`},
			want: []wsproxy.Challenge{{Scheme: "Digest", Params: p("realm", "squid-digest", "nonce", "AbC+/=", "qop", "auth", "stale", "false")}}},
		{name: "two headers", in: []string{"NTLM", `Basic realm="squid-basic"`},
			want: []wsproxy.Challenge{{Scheme: "NTLM"}, {Scheme: "Basic", Params: p("realm", "squid-basic")}}},
		{name: "several in one header", in: []string{`Basic realm="a", Digest realm="b", nonce="n", algorithm=SHA-256, NTLM`},
			want: []wsproxy.Challenge{
				{Scheme: "Basic", Params: p("realm", "a")},
				{Scheme: "Digest", Params: p("realm", "b", "nonce", "n", "algorithm", "SHA-256")},
				{Scheme: "NTLM"}}},
		{name: "token68 with padding", in: []string{"NTLM TlRMTVNTUAACAAAA==", "Negotiate abc/+.~-_"},
			want: []wsproxy.Challenge{{Scheme: "NTLM", Token68: "TlRMTVNTUAACAAAA=="}, {Scheme: "Negotiate", Token68: "abc/+.~-_"}}},
		{name: "token68 then another challenge", in: []string{"Negotiate abc==, Basic realm=x"},
			want: []wsproxy.Challenge{{Scheme: "Negotiate", Token68: "abc=="}, {Scheme: "Basic", Params: p("realm", "x")}}},
		{name: "quoted comma and escapes", in: []string{`Digest realm="a, \"b\" \\ c", qop="auth,auth-int"`},
			want: []wsproxy.Challenge{{Scheme: "Digest", Params: p("realm", `a, "b" \ c`, "qop", "auth,auth-int")}}},
		{name: "unquoted values and BWS around =", in: []string{`Basic realm = proxy , charset=UTF-8`},
			want: []wsproxy.Challenge{{Scheme: "Basic", Params: p("realm", "proxy", "charset", "UTF-8")}}},
		{name: "names are case-insensitive", in: []string{`basic REALM="x"`},
			want: []wsproxy.Challenge{{Scheme: "basic", Params: p("realm", "x")}}},
		{name: "empty list elements", in: []string{`, Basic realm="x" ,, , Digest realm="y",`},
			want: []wsproxy.Challenge{{Scheme: "Basic", Params: p("realm", "x")}, {Scheme: "Digest", Params: p("realm", "y")}}},
		{name: "duplicate param keeps the first", in: []string{`Basic realm="one", realm="two"`},
			want: []wsproxy.Challenge{{Scheme: "Basic", Params: p("realm", "one")}}},
		{name: "empty header", in: []string{""}, want: nil},
		{name: "unterminated quote", in: []string{`Basic realm="x`}, want: nil, wantErr: true},
		// "realm=" is a valid token68 by the grammar, so it is read as one.
		{name: "token68 that looks like a param", in: []string{`Digest realm=`},
			want: []wsproxy.Challenge{{Scheme: "Digest", Token68: "realm="}}},
		{name: "good header then bad one", in: []string{`Basic realm="x"`, `Digest realm="y" junk`}, wantErr: true,
			want: []wsproxy.Challenge{{Scheme: "Basic", Params: p("realm", "x")}}},
		{name: "garbage scheme", in: []string{`"quoted"`}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := wsproxy.ParseChallenges(tc.in)
			if tc.wantErr {
				require.Error(t, err, tc.String())
			} else {
				require.NoError(t, err, tc.String())
			}
			require.Equal(t, tc.want, got, tc.String())
		})
	}
}

func TestChallengeString(t *testing.T) {
	t.Parallel()
	chs, err := wsproxy.ParseChallenges([]string{`Digest realm="r", nonce="secret-ish"`, "NTLM"})
	require.NoError(t, err)
	require.Equal(t, `Digest realm="r"`, chs[0].String())
	require.Equal(t, "NTLM", chs[1].String())
}
