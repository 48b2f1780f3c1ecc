package wsproxy_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
)

// digestParams parses the parameters of a Digest answer for comparison.
func digestParams(t *testing.T, h string) map[string]string {
	t.Helper()
	chs, err := wsproxy.ParseChallenges([]string{h})
	require.NoError(t, err)
	require.Len(t, chs, 1)
	require.Equal(t, "Digest", chs[0].Scheme)
	return chs[0].Params
}

// The worked examples of RFC 7616 section 3.9: the response values must
// match the RFC to the digit.
func TestDigestRFC7616Examples(t *testing.T) {
	t.Parallel()
	mufasa := func(alg string) wsproxy.Challenge {
		return wsproxy.Challenge{Scheme: "Digest", Params: map[string]string{
			"realm":     "http-auth@example.org",
			"qop":       "auth, auth-int",
			"algorithm": alg,
			"nonce":     "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
			"opaque":    "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
		}}
	}
	cases := []struct {
		name           string
		ch             wsproxy.Challenge
		user, password string
		uri, cnonce    string
		wantUser       string
		wantResponse   string
	}{
		{name: "3.9.1 MD5", ch: mufasa("MD5"), user: "Mufasa", password: "Circle of Life",
			uri: "/dir/index.html", cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			wantUser: "Mufasa", wantResponse: "8ca523f5e9506fed4657c9700eebdbec"},
		{name: "3.9.1 SHA-256", ch: mufasa("SHA-256"), user: "Mufasa", password: "Circle of Life",
			uri: "/dir/index.html", cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			wantUser: "Mufasa", wantResponse: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		// The RFC printed this example's values with SHA-512 truncated to
		// 256 bits (username 488869..., response ae66e6...), not with
		// SHA-512/256 of FIPS 180-4 that the algorithm names; see
		// TestDigestRFC7616SHA512Truncation. These are SHA-512/256 values.
		{name: "3.9.2 SHA-512-256 with userhash and UTF-8",
			ch: wsproxy.Challenge{Scheme: "Digest", Params: map[string]string{
				"realm": "api@example.org", "qop": "auth", "algorithm": "SHA-512-256",
				"nonce":   "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
				"opaque":  "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
				"charset": "UTF-8", "userhash": "true"}},
			user: "J\u00e4s\u00f8n Doe", password: "Secret, or not?",
			uri: "/doe.json", cnonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
			wantUser:     "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b",
			wantResponse: "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := wsproxy.DigestAnswerForTest(tc.ch, tc.user, tc.password, "GET", tc.uri, tc.cnonce)
			require.NoError(t, err)
			p := digestParams(t, h)
			require.Equal(t, tc.wantResponse, p["response"], h)
			require.Equal(t, tc.wantUser, p["username"])
			require.Equal(t, "00000001", p["nc"])
			require.Equal(t, "auth", p["qop"])
			require.Equal(t, tc.cnonce, p["cnonce"])
			require.Equal(t, tc.ch.Params["opaque"], p["opaque"])
			require.Equal(t, tc.ch.Params["realm"], p["realm"])
			require.Equal(t, tc.uri, p["uri"])
			require.Equal(t, tc.ch.Params["algorithm"], p["algorithm"])
			require.NotContains(t, h, tc.password)
		})
	}
	// The whole header of 3.9.1, in the RFC's parameter order.
	h, err := wsproxy.DigestAnswerForTest(mufasa("MD5"), "Mufasa", "Circle of Life", "GET", "/dir/index.html", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
	require.NoError(t, err)
	require.Equal(t, `Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, `+
		`nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", `+
		`qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`, h)
}

// The values printed in RFC 7616 section 3.9.2 come from truncated SHA-512:
// the same formula with that hash reproduces them exactly, so the only
// difference from ours is the hash the RFC's authors used.
func TestDigestRFC7616SHA512Truncation(t *testing.T) {
	t.Parallel()
	h := func(s string) string { x := sha512.Sum512([]byte(s)); return hex.EncodeToString(x[:32]) }
	require.Equal(t, "488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec", h("J\u00e4s\u00f8n Doe:api@example.org"))
	ha1 := h("J\u00e4s\u00f8n Doe:api@example.org:Secret, or not?")
	resp := h(ha1 + ":5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK:00000001:NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v:auth:" + h("GET:/doe.json"))
	require.Equal(t, "ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd", resp)
}

// RFC 2617 section 3.5's example has qop=auth with MD5 and no algorithm;
// RFC 2069 has no qop at all. Both forms are answered.
func TestDigestForms(t *testing.T) {
	t.Parallel()
	base := func(kv ...string) wsproxy.Challenge {
		p := map[string]string{"realm": "testrealm@host.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "opaque": "5ccc069c403ebaf9f0171e9517f40e41"}
		for i := 0; i < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return wsproxy.Challenge{Scheme: "Digest", Params: p}
	}
	t.Run("RFC 2617 example", func(t *testing.T) {
		h, err := wsproxy.DigestAnswerForTest(base("qop", "auth,auth-int"), "Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b")
		require.NoError(t, err)
		p := digestParams(t, h)
		require.Equal(t, "6629fae49393a05397450978507c4ef1", p["response"])
		require.NotContains(t, h, "algorithm=", "no algorithm offered, none echoed")
	})
	t.Run("RFC 2069 without qop", func(t *testing.T) {
		h, err := wsproxy.DigestAnswerForTest(base(), "Mufasa", "CircleOfLife", "GET", "/dir/index.html", "ignored")
		require.NoError(t, err)
		p := digestParams(t, h)
		require.Equal(t, "1949323746fe6a43ef61f9606e7febea", p["response"])
		for _, k := range []string{"qop", "nc", "cnonce"} {
			require.NotContains(t, p, k)
		}
	})
	t.Run("quotes in the user name are escaped", func(t *testing.T) {
		h, err := wsproxy.DigestAnswerForTest(base("qop", "auth"), `a"b\c`, "pw", "CONNECT", "h:443", "c")
		require.NoError(t, err)
		require.Equal(t, `a"b\c`, digestParams(t, h)["username"])
	})
	t.Run("non-ASCII user with charset goes as username*", func(t *testing.T) {
		h, err := wsproxy.DigestAnswerForTest(base("qop", "auth", "charset", "UTF-8"), "Jäsøn", "pw", "CONNECT", "h:443", "c")
		require.NoError(t, err)
		require.Contains(t, h, `username*=UTF-8''J%C3%A4s%C3%B8n`)
	})
}

func TestDigestStrength(t *testing.T) {
	t.Parallel()
	ch := func(kv ...string) wsproxy.Challenge {
		p := map[string]string{"realm": "r", "nonce": "n"}
		for i := 0; i < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return wsproxy.Challenge{Scheme: "Digest", Params: p}
	}
	var d wsproxy.DigestAuth
	for _, tc := range []struct {
		name string
		ch   wsproxy.Challenge
		want int
	}{
		{"no algorithm is MD5", ch(), wsproxy.StrengthDigestMD5},
		{"MD5-sess", ch("algorithm", "MD5-sess", "qop", "auth"), wsproxy.StrengthDigestMD5},
		{"SHA-256", ch("algorithm", "SHA-256"), wsproxy.StrengthDigestSHA256},
		{"sha-256-sess, any case", ch("algorithm", "sha-256-SESS", "qop", "auth"), wsproxy.StrengthDigestSHA256},
		{"SHA-512-256", ch("algorithm", "SHA-512-256"), wsproxy.StrengthDigestSHA256},
		{"unknown algorithm", ch("algorithm", "SHA3-512"), 0},
		{"no nonce", wsproxy.Challenge{Scheme: "Digest", Params: map[string]string{"realm": "r"}}, 0},
		{"only unknown qop", ch("qop", "auth-conf"), 0},
		{"-sess without qop", ch("algorithm", "MD5-sess"), 0},
	} {
		require.Equal(t, tc.want, d.Strength(tc.ch), tc.name)
	}
}

// A session answers a stale nonce once, with a new nonce and nc restarting
// at 1, and reports any other second challenge as a rejection; the
// password is not needed after the first answer.
func TestDigestSessionStale(t *testing.T) {
	t.Parallel()
	s, err := wsproxy.DigestAuth{}.Start(context.Background(), &url.URL{Scheme: "http", Host: "p:3128"}, "example.com:443",
		&wsproxy.Credentials{Username: "alice", Password: "pw"})
	require.NoError(t, err)
	ch := func(nonce, stale string) wsproxy.Challenge {
		return wsproxy.Challenge{Scheme: "Digest", Params: map[string]string{"realm": "r", "nonce": nonce, "qop": "auth", "stale": stale}}
	}
	h1, err := s.Answer(context.Background(), ch("n1", "false"))
	require.NoError(t, err)
	p1 := digestParams(t, h1)
	require.Equal(t, "example.com:443", p1["uri"], "uri is the CONNECT authority")
	require.Len(t, p1["cnonce"], 32)
	require.False(t, s.Done())
	require.False(t, s.ConnectionBound())

	h2, err := s.Answer(context.Background(), ch("n2", "true"))
	require.NoError(t, err)
	p2 := digestParams(t, h2)
	require.Equal(t, "n2", p2["nonce"])
	require.Equal(t, "00000001", p2["nc"])
	require.NotEqual(t, p1["cnonce"], p2["cnonce"], "a fresh cnonce")
	require.True(t, s.Done())

	_, err = s.Answer(context.Background(), ch("n3", "true"))
	require.ErrorIs(t, err, wsproxy.ErrProxyCredentialsRejected)

	s2, _ := wsproxy.DigestAuth{}.Start(context.Background(), nil, "h:1", &wsproxy.Credentials{Username: "a", Password: "b"})
	_, err = s2.Answer(context.Background(), ch("n1", "false"))
	require.NoError(t, err)
	_, err = s2.Answer(context.Background(), ch("n2", "false"))
	require.ErrorIs(t, err, wsproxy.ErrProxyCredentialsRejected, "a new nonce without stale=true means a wrong password")
	require.True(t, strings.HasPrefix(h1, "Digest "))
}
