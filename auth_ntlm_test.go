package wsproxy_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

func TestNTLMFlows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		closeAll  bool   // the proxy closes after every 407
		user      string // sent by the client
		schemes   []wsproxy.AuthScheme
		wantErr   error
		wantInErr string
		wantDials int64
	}{
		{name: "three legs on one connection", user: `CORP\alice`, wantDials: 1},
		{name: "user@domain form", user: "alice@corp", wantDials: 1},
		{name: "proxy closes after its challenge", closeAll: true, user: "alice", wantDials: 2,
			wantInErr: "proxy closed the connection in the middle of the NTLM handshake, which needs one connection"},
		{name: "refused user", user: "mallory", wantErr: wsproxy.ErrProxyCredentialsRejected, wantDials: 1},
		{name: "restricted to Basic, NTLM is not used", user: "alice", schemes: []wsproxy.AuthScheme{wsproxy.BasicAuth{}},
			wantErr: wsproxy.ErrProxyCredentialsRejected, wantDials: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth := &proxytest.NTLM{Username: "alice", Extra: []string{`Basic realm="corp"`}}
			p := proxytest.New(t, proxytest.Config{Auth: auth, CloseAfter407: tc.closeAll})
			var dials, calls atomic.Int64
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), NetDial: countingDial(&dials), AuthSchemes: tc.schemes,
				Credentials: fixedCreds(&calls, tc.user, testPassword), Logf: logs.Logf}
			err := tunnel(t, d)
			switch {
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
			case tc.wantInErr != "":
				require.ErrorContains(t, err, tc.wantInErr)
			default:
				require.NoError(t, err)
				require.Equal(t, 1, auth.Accepted())
				hs := authHeaders(p)
				require.Len(t, hs, 3)
				require.Empty(t, hs[0])
				require.True(t, strings.HasPrefix(hs[1], "NTLM TlRMTVNTUAAB"), "negotiate: %s", hs[1])
				require.True(t, strings.HasPrefix(hs[2], "NTLM TlRMTVNTUAAD"), "authenticate: %s", hs[2])
				require.Contains(t, logs.String(), "auth: answering NTLM with credentials from Dialer.Credentials (the strongest usable")
			}
			require.Equal(t, tc.wantDials, dials.Load(), "TCP connections")
			require.Zero(t, auth.CrossConnection(), "an authenticate message never goes on another connection")
			assertNoSecrets(t, logs.String(), testPassword)
			if err != nil {
				assertNoSecrets(t, err.Error(), testPassword)
			}
		})
	}
}

// With NTLM restricted, credentials in the proxy URL are not sent as a
// clear-text Basic guess first.
func TestNTLMRestrictedNoPreemptiveBasic(t *testing.T) {
	t.Parallel()
	auth := &proxytest.NTLM{Username: "alice"}
	p := proxytest.New(t, proxytest.Config{Auth: auth})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", testPassword)), AuthSchemes: []wsproxy.AuthScheme{wsproxy.NTLMAuth{}}}
	require.NoError(t, tunnel(t, d))
	hs := authHeaders(p)
	require.Len(t, hs, 3)
	require.Empty(t, hs[0])
	// The next dial runs the legs again (NTLM authenticates a connection),
	// with the cached credentials and without a Basic guess.
	d.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: p.Addr})
	require.NoError(t, tunnel(t, d))
	hs = authHeaders(p)
	require.Len(t, hs, 6)
	require.Empty(t, hs[3])
	require.Equal(t, 2, auth.Accepted())
}

// squid's ntlm_fake_auth sends a 49-byte challenge in the old layout (no
// TargetInfo) with an uninitialised TargetName offset; it is answered.
func TestNTLMShortChallenge(t *testing.T) {
	t.Parallel()
	fromSquid := "TlRMTVNTUAACAAAACQAJAK6qqqoHggiimK52WCf4ZFgAAAAAAAA6AFdPUktHUk9VUA=="
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"squid ntlm_fake_auth", fromSquid, true},
		{"32 bytes, no reserved field", "TlRMTVNTUAACAAAAAAAAACAAAAAFAoIAASNFZ4mrze8=", true},
		{"truncated before the server challenge", "TlRMTVNTUAACAAAA", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := wsproxy.NTLMAuth{}.Start(context.Background(), nil, "h:443", &wsproxy.Credentials{Username: "alice", Password: "pw"})
			require.NoError(t, err)
			neg, err := s.Answer(context.Background(), wsproxy.Challenge{Scheme: "NTLM"})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(neg, "NTLM "))
			require.False(t, s.ConnectionBound(), "the negotiate message may go on a new connection")
			auth, err := s.Answer(context.Background(), wsproxy.Challenge{Scheme: "NTLM", Token68: tc.token})
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(auth, "NTLM TlRMTVNTUAAD"))
			require.True(t, s.ConnectionBound())
			require.True(t, s.Done())
		})
	}
}
