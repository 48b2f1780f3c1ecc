package wsproxy_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

type netrcCase struct {
	name, file, host string
	want             *wsproxy.Credentials
	wantErr          bool
}

func (c netrcCase) String() string { return c.name + ": host " + c.host }

func TestParseNetrc(t *testing.T) {
	t.Parallel()
	cr := func(u, p string) *wsproxy.Credentials { return &wsproxy.Credentials{Username: u, Password: p} }
	cases := []netrcCase{
		{name: "one line", file: "machine proxy.corp login alice password s3cret", host: "proxy.corp", want: cr("alice", "s3cret")},
		{name: "host case-insensitive, several lines", file: "machine other login x password y\nmachine PROXY.corp\n  login alice\n  password s3cret\n", host: "proxy.CORP", want: cr("alice", "s3cret")},
		{name: "first matching machine wins", file: "machine p login a password 1\nmachine p login b password 2", host: "p", want: cr("a", "1")},
		{name: "default when no machine matches", file: "machine other login x password y\ndefault login anon password guest", host: "p", want: cr("anon", "guest")},
		{name: "machine after default still matches", file: "default login anon password guest\nmachine p login a password 1", host: "p", want: cr("a", "1")},
		{name: "no match, no default", file: "machine other login x password y", host: "p", want: nil},
		{name: "quoted password with spaces and escapes", file: `machine p login alice password "a b\"c\\d"`, host: "p", want: cr("alice", `a b"c\d`)},
		{name: "account ignored, comments skipped", file: "# comment\nmachine p login a account acct password 1 # trailing\n", host: "p", want: cr("a", "1")},
		{name: "macdef body skipped", file: "macdef init\ncd /pub\nmachine q\n\nmachine p login a password 1", host: "p", want: cr("a", "1")},
		{name: "login without password", file: "machine p login a", host: "p", want: cr("a", "")},
		{name: "empty file", file: "", host: "p", want: nil},
		{name: "dangling keyword", file: "machine p login", host: "p", wantErr: true},
		{name: "unterminated quote", file: `machine p password "abc`, host: "p", wantErr: true},
		{name: "unknown keyword", file: "machine p user a", host: "p", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := wsproxy.ParseNetrcForTest(tc.file, tc.host)
			if tc.wantErr {
				require.Error(t, err, tc.String())
				require.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err, tc.String())
			require.Equal(t, tc.want, got, tc.String())
		})
	}
}

// The sources in their documented order: URL userinfo (exclusive), cache,
// callback, netrc. A refused source is not asked again; the next one is.
func TestCredentialSources(t *testing.T) {
	t.Parallel()
	writeNetrc := func(t *testing.T, pass string) string {
		path := filepath.Join(t.TempDir(), "netrc")
		require.NoError(t, os.WriteFile(path, []byte("machine 127.0.0.1 login alice password "+pass+"\n"), 0o600))
		return path
	}
	t.Run("netrc after a callback that has none", func(t *testing.T) {
		t.Parallel()
		p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
		var calls atomic.Int64
		logs := &logSink{}
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), UseNetrc: true, NetrcFile: writeNetrc(t, testPassword), Logf: logs.Logf,
			Credentials: func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
				calls.Add(1)
				return nil, nil
			}}
		require.NoError(t, tunnel(t, d))
		require.EqualValues(t, 1, calls.Load())
		require.Contains(t, logs.String(), "with credentials from the netrc file")
		// Cached now: the next dial sends Basic at once and asks no one.
		require.NoError(t, tunnel(t, d))
		require.EqualValues(t, 1, calls.Load())
		require.Len(t, p.Requests(), 3)
		assertNoSecrets(t, logs.String(), testPassword)
	})
	t.Run("netrc is opt-in", func(t *testing.T) {
		t.Parallel()
		p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), NetrcFile: writeNetrc(t, testPassword)}
		require.ErrorIs(t, tunnel(t, d), wsproxy.ErrProxyAuthRequired)
	})
	t.Run("refused callback, then netrc", func(t *testing.T) {
		t.Parallel()
		p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
		var calls, dials atomic.Int64
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), UseNetrc: true, NetrcFile: writeNetrc(t, testPassword),
			NetDial: countingDial(&dials), Credentials: fixedCreds(&calls, "alice", "wrong")}
		require.NoError(t, tunnel(t, d))
		require.EqualValues(t, 1, calls.Load())
		require.EqualValues(t, 1, dials.Load())
		require.Len(t, p.Requests(), 3)
	})
	t.Run("URL credentials are exclusive", func(t *testing.T) {
		t.Parallel()
		p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
		var calls atomic.Int64
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", "wrong")), UseNetrc: true, NetrcFile: writeNetrc(t, testPassword),
			Credentials: fixedCreds(&calls, "alice", testPassword)}
		require.ErrorIs(t, tunnel(t, d), wsproxy.ErrProxyCredentialsRejected)
		require.Zero(t, calls.Load())
	})
	t.Run("cached credentials refused after a password change", func(t *testing.T) {
		t.Parallel()
		auth := &proxytest.Digest{Username: "alice", Password: "old", Realm: "corp"}
		p := proxytest.New(t, proxytest.Config{Auth: auth})
		pass := atomic.Value{}
		pass.Store("old")
		var calls atomic.Int64
		logs := &logSink{}
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), Logf: logs.Logf,
			Credentials: func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
				calls.Add(1)
				return &wsproxy.Credentials{Username: "alice", Password: pass.Load().(string)}, nil
			}}
		require.NoError(t, tunnel(t, d))
		auth.SetPassword("new")
		pass.Store("new")
		// Preemptive with the old key, refused; one retry with the old key
		// on the new nonce, refused; dropped; the callback gives the new one.
		require.NoError(t, tunnel(t, d))
		require.EqualValues(t, 2, calls.Load())
		require.Contains(t, logs.String(), "dropped the cached Digest credentials")
	})
	t.Run("ForgetCredentials", func(t *testing.T) {
		t.Parallel()
		p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
		var calls atomic.Int64
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), Credentials: fixedCreds(&calls, "alice", testPassword)}
		require.NoError(t, tunnel(t, d))
		d.ForgetCredentials()
		require.NoError(t, tunnel(t, d))
		require.EqualValues(t, 2, calls.Load())
		require.Len(t, p.Requests(), 4)
	})
	t.Run("callback error aborts", func(t *testing.T) {
		t.Parallel()
		p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
		boom := errors.New("keyring locked")
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), Credentials: func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
			return nil, boom
		}}
		require.ErrorIs(t, tunnel(t, d), boom)
	})
}
