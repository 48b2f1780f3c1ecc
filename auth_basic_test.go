package wsproxy_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

const testPassword = "s3cret-Pa55"

// countingDial counts the TCP connections a Dialer opens.
func countingDial(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestBasicAuthFlows(t *testing.T) {
	t.Parallel()
	type result struct {
		err      error // nil, or a sentinel errors.Is must match
		status   int   // ProxyError status when err != nil
		dials    int   // TCP connections to the proxy
		callback int   // calls of Dialer.Credentials
	}
	cases := []struct {
		name   string
		cfg    proxytest.Config
		inURL  *url.Userinfo
		cb     *wsproxy.Credentials // returned by the callback; nil = none
		schems []wsproxy.AuthScheme
		want   result
	}{
		{name: "URL credentials after the Basic challenge", inURL: url.UserPassword("alice", testPassword),
			want: result{dials: 1}},
		{name: "empty password in URL is still sent", cfg: proxytest.Config{Username: "alice", Password: ""}, inURL: url.User("alice"),
			want: result{dials: 1}},
		{name: "callback, keep-alive 407 reuses the socket", cb: &wsproxy.Credentials{Username: "alice", Password: testPassword},
			want: result{dials: 1, callback: 1}},
		{name: "callback, 407 with close redials", cfg: proxytest.Config{CloseAfter407: true}, cb: &wsproxy.Credentials{Username: "alice", Password: testPassword},
			want: result{dials: 2, callback: 1}},
		{name: "wrong password in URL", inURL: url.UserPassword("alice", "wrong"),
			want: result{err: wsproxy.ErrProxyCredentialsRejected, status: 407, dials: 1}},
		{name: "wrong password answered with 401 like tinyproxy", cfg: proxytest.Config{WrongPasswordStatus: 401, CloseAfter407: true}, inURL: url.UserPassword("alice", "wrong"),
			want: result{err: wsproxy.ErrProxyCredentialsRejected, status: 401, dials: 2}},
		{name: "wrong password from callback is not retried in a loop", cb: &wsproxy.Credentials{Username: "alice", Password: "wrong"},
			want: result{err: wsproxy.ErrProxyCredentialsRejected, status: 407, dials: 1, callback: 1}},
		{name: "no credentials", want: result{err: wsproxy.ErrProxyAuthRequired, status: 407, dials: 1}},
		{name: "callback has none", cb: nil, want: result{err: wsproxy.ErrProxyAuthRequired, status: 407, dials: 1, callback: 1}},
		{name: "407 without a challenge", cfg: proxytest.Config{Challenges: []string{}}, cb: &wsproxy.Credentials{Username: "alice", Password: testPassword},
			want: result{err: wsproxy.ErrProxyAuthRequired, status: 407, dials: 1}},
		{name: "only unknown schemes offered", cfg: proxytest.Config{Challenges: []string{`Bearer realm="x"`}}, cb: &wsproxy.Credentials{Username: "alice", Password: testPassword},
			want: result{err: wsproxy.ErrProxyAuthRequired, status: 407, dials: 1}},
		{name: "restricted schemes never fall back to Basic", schems: []wsproxy.AuthScheme{restrictedScheme{}}, cb: &wsproxy.Credentials{Username: "alice", Password: testPassword},
			want: result{err: wsproxy.ErrProxyAuthRequired, status: 407, dials: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if cfg.Username == "" {
				cfg.Username, cfg.Password = "alice", testPassword
			}
			target := newEchoServer(t, false)
			p := proxytest.New(t, cfg)
			pu := *p.URL
			pu.User = tc.inURL
			var dials, calls atomic.Int64
			logs := &logSink{}
			d := &wsproxy.Dialer{
				Proxy:       http.ProxyURL(&pu),
				NetDial:     countingDial(&dials),
				AuthSchemes: tc.schems,
				Logf:        logs.Logf,
			}
			if tc.name != "no credentials" {
				d.Credentials = func(_ context.Context, r *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
					calls.Add(1)
					require.Nil(t, r.Proxy.User, "callback must not see userinfo")
					require.Equal(t, "Basic", r.Scheme)
					require.Equal(t, "proxytest", r.Realm)
					return tc.cb, nil
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := d.Dial(ctx, target.wsURL("/"), nil)
			if c != nil {
				c.CloseNow()
			}
			if tc.want.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want.err)
				var pe *wsproxy.ProxyError
				require.True(t, errors.As(err, &pe), "want *ProxyError, got %T", err)
				require.Equal(t, tc.want.status, pe.StatusCode)
				assertNoSecrets(t, err.Error(), "wrong", testPassword)
			}
			require.EqualValues(t, tc.want.dials, dials.Load(), "TCP connections to the proxy")
			require.EqualValues(t, tc.want.callback, calls.Load(), "credential callbacks")
			assertNoSecrets(t, logs.String(), "wrong", testPassword)
		})
	}
}

// assertNoSecrets fails when text holds a password or a Basic encoding of
// one.
func assertNoSecrets(t *testing.T, text string, passwords ...string) {
	t.Helper()
	for _, pw := range passwords {
		require.NotContains(t, text, pw)
		require.NotContains(t, text, base64.StdEncoding.EncodeToString([]byte("alice:"+pw)))
	}
	require.NotContains(t, strings.ToLower(text), "ywxpy2u6") // base64 of "alice:" prefix
}

// restrictedScheme stands for a scheme the proxy does not offer.
type restrictedScheme struct{ wsproxy.BasicAuth }

func (restrictedScheme) Name() string { return "Kerberos-Only" }

func TestErrorMessagesNameTheOfferedSchemes(t *testing.T) {
	t.Parallel()
	p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword,
		Challenges: []string{`Basic realm="corp"`, `Bearer realm="x"`}})
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL)}
	_, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
	require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
	require.Contains(t, err.Error(), `offered: Basic realm="corp", Bearer realm="x"`)
	require.Contains(t, err.Error(), "407 Proxy Authentication Required")
}

func TestPasswordNeverInTraceOrErrors(t *testing.T) {
	t.Parallel()
	p := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
	logs := &logSink{}
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URLWithUser("alice", testPassword)), Logf: logs.Logf}
	// Success: the trace shows the exchange, redacted.
	c, err := d.DialContext(context.Background(), "tcp", newEchoServer(t, false).Listener.Addr().String())
	require.NoError(t, err)
	c.Close()
	trace := logs.String()
	require.Contains(t, trace, "-> Proxy-Authorization: Basic [redacted]")
	require.Contains(t, trace, "http://alice:xxxxx@")
	assertNoSecrets(t, trace, testPassword)
	// Failure: the proxy URL in the error is redacted too.
	d.Proxy = http.ProxyURL(p.URLWithUser("alice", "wrong-"+testPassword))
	_, err = d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
	require.Error(t, err)
	assertNoSecrets(t, err.Error()+logs.String(), testPassword)
}
