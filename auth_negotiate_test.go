package wsproxy_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// noKerberos is a test environment with no ticket cache and no Kerberos
// configuration (so KDCs would be looked up in DNS, and no realm is known):
// the default NegotiateAuth cannot get a ticket and gives way at once.
func noKerberos(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{"KRB5CCNAME": "FILE:" + filepath.Join(dir, "no-ccache"), "KRB5_CONFIG": filepath.Join(dir, "no-krb5.conf")}
}

// Without a Kerberos ticket, the default schemes fall back from Negotiate
// to the next scheme the proxy offered, each under its own rules, and the
// trace says why; with nothing else offered the error says what to do.
func TestNegotiateFallbackWithoutTicket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		challenges []string
		creds      bool
		wantErr    []string // empty: the tunnel opens
		wantBasic  bool     // Basic answered
	}{
		{name: "Negotiate then Basic, with a password", challenges: []string{"Negotiate", `Basic realm="corp"`}, creds: true, wantBasic: true},
		{name: "Negotiate only, no password", challenges: []string{"Negotiate"},
			wantErr: []string{"proxy authentication required: Negotiate: negotiate: no Kerberos ticket", "run kinit", "offered: Negotiate"}},
		{name: "Negotiate only, a password but no realm", challenges: []string{"Negotiate"}, creds: true,
			wantErr: []string{"no realm for user alice"}},
		{name: "Negotiate and Basic, no password", challenges: []string{"Negotiate", `Basic realm="corp"`},
			wantErr: []string{"no Kerberos ticket", `offered: Negotiate, Basic realm="corp"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword, Challenges: tc.challenges})
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), Logf: logs.Logf}
			wsproxy.SetTestEnv(d, noKerberos(t))
			var calls atomic.Int64
			if tc.creds {
				d.Credentials = fixedCreds(&calls, "alice", testPassword)
			}
			err := tunnel(t, d)
			t.Log(logs.String())
			require.Contains(t, logs.String(), "auth: skipping Negotiate: negotiate: ")
			for _, h := range authHeaders(p) {
				require.False(t, strings.HasPrefix(h, "Negotiate"), "nothing goes as Negotiate without a ticket")
			}
			if len(tc.wantErr) > 0 {
				require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
				require.ErrorIs(t, err, wsproxy.ErrNoKerberosTicket)
				for _, w := range tc.wantErr {
					require.Contains(t, err.Error(), w)
				}
				require.Len(t, p.Requests(), 1, "no second CONNECT")
				return
			}
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(authHeaders(p)[1], "Basic "))
			assertNoSecrets(t, logs.String(), testPassword)
		})
	}
}

// DescribeNegotiate says which SPN and credentials would be used, and
// never a password.
func TestDescribeNegotiate(t *testing.T) {
	t.Parallel()
	d := &wsproxy.Dialer{ProxySPN: "HTTP/proxy.corp.example@CORP.EXAMPLE", UseNetrc: true,
		Credentials: fixedCreds(new(atomic.Int64), "alice", testPassword)}
	wsproxy.SetTestEnv(d, noKerberos(t))
	u := proxytest.New(t, proxytest.Config{}).URLWithUser("alice", testPassword)
	got := d.DescribeNegotiate(context.Background(), u)
	require.Contains(t, got, "SPN HTTP/proxy.corp.example")
	require.Contains(t, got, "realm CORP.EXAMPLE")
	require.Contains(t, got, "password of alice (from the proxy URL)")
	require.NotContains(t, got, testPassword)

	u.User = nil
	got = d.DescribeNegotiate(context.Background(), u)
	require.Contains(t, got, "ticket cache FILE:")
	require.Contains(t, got, "without a ticket, a password from Dialer.Credentials, then the netrc file")

	// A keytab selects pure-Go Kerberos on every system, Windows included.
	d.AuthSchemes = []wsproxy.AuthScheme{wsproxy.NegotiateAuth{Keytab: "/etc/svc.keytab", Principal: "svc"}}
	got = d.DescribeNegotiate(context.Background(), u)
	require.Contains(t, got, "client keytab /etc/svc.keytab")

	d.AuthSchemes = []wsproxy.AuthScheme{wsproxy.BasicAuth{}}
	require.Equal(t, "Negotiate: not allowed (AuthSchemes has no NegotiateAuth)", d.DescribeNegotiate(context.Background(), u))
}
