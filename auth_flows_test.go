package wsproxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// tunnel opens a raw tunnel through d to a fresh echo server and closes it.
func tunnel(t *testing.T, d *wsproxy.Dialer) error {
	t.Helper()
	target := newEchoServer(t, false).Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", target)
	if c != nil {
		c.Close()
	}
	return err
}

// fixedCreds is a Credentials callback that counts its calls.
func fixedCreds(calls *atomic.Int64, user, pass string) func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
	return func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
		calls.Add(1)
		return &wsproxy.Credentials{Username: user, Password: pass}, nil
	}
}

func authHeaders(p *proxytest.Proxy) []string {
	var out []string
	for _, r := range p.Requests() {
		out = append(out, r.Header.Get("Proxy-Authorization"))
	}
	return out
}

// Every Digest variant the client supports, against the independent
// server in proxytest: one TCP connection, a 407 then success.
func TestDigestVariantsThroughProxy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  *proxytest.Digest
	}{
		{"no algorithm, like squid", &proxytest.Digest{}},
		{"MD5", &proxytest.Digest{Algorithms: []string{"MD5"}}},
		{"MD5-sess", &proxytest.Digest{Algorithms: []string{"MD5-sess"}}},
		{"SHA-256", &proxytest.Digest{Algorithms: []string{"SHA-256"}}},
		{"SHA-256-sess", &proxytest.Digest{Algorithms: []string{"SHA-256-sess"}}},
		{"SHA-512-256", &proxytest.Digest{Algorithms: []string{"SHA-512-256"}}},
		{"RFC 2069 without qop", &proxytest.Digest{QOP: "none"}},
		{"auth-int only", &proxytest.Digest{QOP: "auth-int"}},
		{"opaque echoed", &proxytest.Digest{Opaque: "opaque/value+="}},
		{"userhash", &proxytest.Digest{UserHash: true, Algorithms: []string{"SHA-256"}}},
		{"charset and a non-ASCII user", &proxytest.Digest{Charset: true, Username: "Jäsøn Doe"}},
		{"quote in the realm", &proxytest.Digest{Realm: `corp "west"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth := tc.cfg
			if auth.Username == "" {
				auth.Username = "alice"
			}
			if auth.Realm == "" {
				auth.Realm = "proxytest-digest"
			}
			auth.Password = testPassword
			p := proxytest.New(t, proxytest.Config{Auth: auth})
			var dials, calls atomic.Int64
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), NetDial: countingDial(&dials),
				Credentials: fixedCreds(&calls, auth.Username, testPassword), Logf: logs.Logf}
			require.NoError(t, tunnel(t, d))
			acc, stale, refused := auth.Counts()
			require.Equal(t, [3]int{1, 0, 1}, [3]int{acc, stale, refused}, "accepted, stale, refused")
			require.EqualValues(t, 1, dials.Load(), "one TCP connection")
			require.EqualValues(t, 1, calls.Load())
			require.Contains(t, logs.String(), "auth: answering Digest")
			assertNoSecrets(t, logs.String(), testPassword)
		})
	}
}

// After one success, later dials answer preemptively with the next nonce
// count: one CONNECT, no 407, no new question for credentials.
func TestDigestPreemptiveReuse(t *testing.T) {
	t.Parallel()
	auth := &proxytest.Digest{Username: "alice", Password: testPassword, Realm: "corp", Algorithms: []string{"SHA-256"}}
	p := proxytest.New(t, proxytest.Config{Auth: auth})
	var dials, calls atomic.Int64
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), NetDial: countingDial(&dials), Credentials: fixedCreds(&calls, "alice", testPassword)}
	for i := 0; i < 3; i++ {
		require.NoError(t, tunnel(t, d))
	}
	hs := authHeaders(p)
	require.Len(t, hs, 4, "a 407 round for the first dial only")
	require.Empty(t, hs[0])
	for i, want := range []string{"00000001", "00000002", "00000003"} {
		require.Equal(t, want, digestParams(t, hs[i+1])["nc"])
	}
	require.Equal(t, digestParams(t, hs[1])["nonce"], digestParams(t, hs[3])["nonce"])
	require.EqualValues(t, 3, dials.Load())
	require.EqualValues(t, 1, calls.Load(), "credentials asked once")

	// Concurrent dials never send the same nonce count.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- tunnel(t, d) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	for _, h := range authHeaders(p)[4:] {
		if h == "" {
			continue
		}
		pr := digestParams(t, h)
		key := pr["nonce"] + "/" + pr["nc"]
		require.False(t, seen[key], "nonce count sent twice: %s", key)
		seen[key] = true
	}
}

// A stale nonce costs one retry with the new nonce, and no new question
// for credentials; so does a nonce the proxy has used up.
func TestDigestStaleNonce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    *proxytest.Digest
		expire bool
	}{
		{"proxy expires its nonces", &proxytest.Digest{}, true},
		{"nonce good for two uses", &proxytest.Digest{MaxNonceUses: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth := tc.cfg
			auth.Username, auth.Password, auth.Realm = "alice", testPassword, "corp"
			p := proxytest.New(t, proxytest.Config{Auth: auth})
			var dials, calls atomic.Int64
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), NetDial: countingDial(&dials), Credentials: fixedCreds(&calls, "alice", testPassword), Logf: logs.Logf}
			require.NoError(t, tunnel(t, d)) // 407, then nc=1
			require.NoError(t, tunnel(t, d)) // preemptive nc=2
			if tc.expire {
				auth.ExpireNonces()
			}
			require.NoError(t, tunnel(t, d)) // stale: one retry with the new nonce
			require.NoError(t, tunnel(t, d)) // preemptive with the new nonce
			acc, stale, _ := auth.Counts()
			require.Equal(t, 4, acc)
			require.Equal(t, 1, stale)
			require.EqualValues(t, 1, calls.Load(), "a stale nonce does not ask for credentials")
			require.EqualValues(t, 4, dials.Load(), "the retry goes on the same connection")
			hs := authHeaders(p)
			require.Len(t, hs, 6)
			require.Equal(t, "00000001", digestParams(t, hs[4])["nc"], "the new nonce starts at 1")
			require.Equal(t, "00000002", digestParams(t, hs[5])["nc"])
		})
	}
}

// A wrong password is one refused answer: no loop, no second question,
// and nothing cached.
func TestDigestWrongPassword(t *testing.T) {
	t.Parallel()
	auth := &proxytest.Digest{Username: "alice", Password: testPassword, Realm: "corp"}
	p := proxytest.New(t, proxytest.Config{Auth: auth})
	var dials, calls atomic.Int64
	logs := &logSink{}
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), NetDial: countingDial(&dials), Credentials: fixedCreds(&calls, "alice", "wrong-"+testPassword), Logf: logs.Logf}
	err := tunnel(t, d)
	require.ErrorIs(t, err, wsproxy.ErrProxyCredentialsRejected)
	require.Contains(t, err.Error(), `Digest, user "alice", from Dialer.Credentials`)
	require.EqualValues(t, 1, calls.Load())
	require.EqualValues(t, 1, dials.Load())
	require.Len(t, p.Requests(), 2)
	// The next dial asks again (nothing was cached) and still fails cleanly.
	require.ErrorIs(t, tunnel(t, d), wsproxy.ErrProxyCredentialsRejected)
	require.EqualValues(t, 2, calls.Load())
	require.Empty(t, authHeaders(p)[2], "nothing sent preemptively after a failure")
	assertNoSecrets(t, err.Error()+logs.String(), testPassword, "wrong-"+testPassword)
}

// Credentials in the proxy URL answer a Digest-only proxy's challenge with
// Digest, never Basic, and later dials send Digest preemptively.
func TestURLCredentialsWithDigestProxy(t *testing.T) {
	t.Parallel()
	auth := &proxytest.Digest{Username: "alice", Password: testPassword, Realm: "corp"}
	p := proxytest.New(t, proxytest.Config{Auth: auth})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", testPassword))}
	require.NoError(t, tunnel(t, d))
	require.NoError(t, tunnel(t, d))
	hs := authHeaders(p)
	require.Len(t, hs, 3)
	require.Empty(t, hs[0], "no password before the proxy asks")
	require.True(t, strings.HasPrefix(hs[1], "Digest "))
	require.True(t, strings.HasPrefix(hs[2], "Digest "), "later dials answer preemptively with Digest")

	// Another user in the URL does not get alice's cached key.
	d.Proxy = http.ProxyURL(p.URLWithUser("bob", "pw"))
	require.ErrorIs(t, tunnel(t, d), wsproxy.ErrProxyCredentialsRejected)
	require.Empty(t, authHeaders(p)[3], "nothing preemptive for another user")
}

// Scheme choice: the strongest offered scheme the Dialer allows, whatever
// the proxy's order; a restriction never falls back to Basic.
func TestSchemeChoice(t *testing.T) {
	t.Parallel()
	offered := []string{`Basic realm="corp"`, `Digest realm="corp", nonce="n1", qop="auth"`, `NTLM`,
		`Digest realm="corp", nonce="n2", qop="auth", algorithm=SHA-256`, `Bearer realm="x"`, `Negotiate`}
	cases := []struct {
		name    string
		schemes []wsproxy.AuthScheme
		want    string // scheme and algorithm of the answer, or the error
	}{
		{"defaults: Digest SHA-256 first", nil, "Digest SHA-256"},
		{"Negotiate beats everything", append([]wsproxy.AuthScheme{fakeNegotiate{}}, wsproxy.DefaultAuthSchemes()...), "Negotiate"},
		{"only MD5-capable Digest", []wsproxy.AuthScheme{md5OnlyDigest{}}, "Digest MD5"},
		{"NTLM and Basic", []wsproxy.AuthScheme{wsproxy.BasicAuth{}, wsproxy.NTLMAuth{}}, "NTLM"},
		{"Basic only", []wsproxy.AuthScheme{wsproxy.BasicAuth{}}, "Basic"},
		{"restricted to a scheme not offered", []wsproxy.AuthScheme{restrictedScheme{}}, "error: no allowed scheme (allowed: Kerberos-Only;"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var answer atomic.Value
			p := proxytest.New(t, proxytest.Config{Handle: func(c net.Conn, r *http.Request) {
				fmt.Fprintf(c, "HTTP/1.1 407 Proxy Authentication Required\r\n")
				for _, o := range offered {
					fmt.Fprintf(c, "Proxy-Authenticate: %s\r\n", o)
				}
				fmt.Fprintf(c, "Content-Length: 0\r\n\r\n")
				if r2, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					answer.Store(r2.Header.Get("Proxy-Authorization"))
					fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
				}
			}})
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), AuthSchemes: tc.schemes,
				Credentials: func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
					return &wsproxy.Credentials{Username: "alice", Password: testPassword}, nil
				}}
			// No Kerberos ticket here: the default NegotiateAuth gives way.
			wsproxy.SetTestEnv(d, noKerberos(t))
			_, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
			require.Error(t, err)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
				require.Contains(t, err.Error(), want)
				return
			}
			first, _ := answer.Load().(string)
			scheme, _, _ := strings.Cut(first, " ")
			got := scheme
			if scheme == "Digest" {
				alg := digestParams(t, first)["algorithm"]
				if alg == "" {
					alg = "MD5"
				}
				got += " " + alg
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// md5OnlyDigest is Digest refusing SHA-256 challenges, to see the
// strength-0 rule skip them.
type md5OnlyDigest struct{ wsproxy.DigestAuth }

func (m md5OnlyDigest) Strength(ch wsproxy.Challenge) int {
	if ch.Params["algorithm"] != "" {
		return 0
	}
	return m.DigestAuth.Strength(ch)
}

// fakeNegotiate answers Negotiate with a fixed token.
type fakeNegotiate struct{}

func (fakeNegotiate) Name() string                   { return "Negotiate" }
func (fakeNegotiate) Strength(wsproxy.Challenge) int { return wsproxy.StrengthNegotiate }
func (fakeNegotiate) NeedsCredentials() bool         { return false }
func (fakeNegotiate) Start(context.Context, *url.URL, string, *wsproxy.Credentials) (wsproxy.AuthSession, error) {
	return &fakeNegotiateSession{}, nil
}

type fakeNegotiateSession struct{ done bool }

func (s *fakeNegotiateSession) Answer(context.Context, wsproxy.Challenge) (string, error) {
	s.done = true
	return "Negotiate dG9rZW4=", nil
}
func (s *fakeNegotiateSession) ConnectionBound() bool { return true }
func (s *fakeNegotiateSession) Done() bool            { return s.done }
