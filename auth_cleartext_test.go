package wsproxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// The cleartext rule (Dialer.Credentials): the password goes as Basic only
// after the proxy offered Basic (in this dial or in an earlier successful
// one), or when AuthSchemes is Basic alone. Each case dials twice with the
// credentials in the proxy URL and lists the Proxy-Authorization scheme of
// every CONNECT the proxy saw ("" for none).
func TestNoCleartextPasswordBeforeBasicIsOffered(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     proxytest.Config
		schemes []wsproxy.AuthScheme
		want    []string // per CONNECT, over both dials
	}{
		{name: "NTLM-only proxy", cfg: proxytest.Config{Auth: &proxytest.NTLM{Username: "alice"}},
			want: []string{"", "NTLM", "NTLM", "", "NTLM", "NTLM"}},
		{name: "NTLM and Basic offered, like squid", cfg: proxytest.Config{Auth: &proxytest.NTLM{Username: "alice", Extra: []string{`Basic realm="corp"`}}},
			want: []string{"", "NTLM", "NTLM", "", "NTLM", "NTLM"}},
		{name: "Digest-only proxy", cfg: proxytest.Config{Auth: &proxytest.Digest{Username: "alice", Password: testPassword, Realm: "corp"}},
			want: []string{"", "Digest", "Digest"}},
		{name: "Basic-only proxy: Basic after its challenge, then at once", cfg: proxytest.Config{Username: "alice", Password: testPassword},
			want: []string{"", "Basic", "Basic"}},
		{name: "Basic-only proxy closing after 407", cfg: proxytest.Config{Username: "alice", Password: testPassword, CloseAfter407: true},
			want: []string{"", "Basic", "Basic"}},
		{name: "AuthSchemes restricted to Basic: at once", cfg: proxytest.Config{Username: "alice", Password: testPassword},
			schemes: []wsproxy.AuthScheme{wsproxy.BasicAuth{}}, want: []string{"Basic", "Basic"}},
		{name: "Digest and Basic allowed, Digest-only proxy", cfg: proxytest.Config{Auth: &proxytest.Digest{Username: "alice", Password: testPassword, Realm: "corp"}},
			schemes: []wsproxy.AuthScheme{wsproxy.DigestAuth{}, wsproxy.BasicAuth{}}, want: []string{"", "Digest", "Digest"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := proxytest.New(t, tc.cfg)
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", testPassword)), AuthSchemes: tc.schemes, Logf: logs.Logf}
			require.NoError(t, tunnel(t, d), "first dial")
			require.NoError(t, tunnel(t, d), "second dial")
			var got []string
			for _, h := range authHeaders(p) {
				scheme, _, _ := strings.Cut(h, " ")
				got = append(got, scheme)
			}
			require.Equal(t, tc.want, got)
			assertNoSecrets(t, logs.String(), testPassword)
		})
	}
}
