package wsproxy_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// Proxy authentication against real proxies, through to a real WebSocket
// echo (Debian's websockify in front of a TCP echo): squid with
// digest_file_auth, with ntlm_fake_auth (offering NTLM and Basic), with
// basic_ncsa_auth, and tinyproxy with BasicAuth. One proxy per kind is
// shared by its subtests (squid takes seconds to start). The subtests of
// one proxy run one after the other: squid 5.7 was seen accepting a wrong
// Digest password while a right one for the same user was being checked
// in parallel, which would make the wrong-password case flaky.
func TestPeersProxyAuth(t *testing.T) {
	t.Parallel()
	ws := peertest.Websockify(t, peertest.EchoServer(t), "")
	kinds := []struct {
		name    string
		start   func(t *testing.T) string
		scheme  string // chosen scheme, as the trace names it
		offered string // in the "no credentials" error
		rounds  int    // CONNECT requests of a first dial with the callback
		wrongOK bool   // ntlm_fake_auth accepts any password
	}{
		{name: "squid digest", scheme: "Digest", offered: `offered: Digest realm="squid-digest"`, rounds: 2,
			start: func(t *testing.T) string {
				return peertest.StartSquid(t, peertest.SquidDigest, "alice", testPassword).Addr
			}},
		{name: "squid ntlm", scheme: "NTLM", offered: `offered: NTLM, Basic realm="squid-basic"`, rounds: 3, wrongOK: true,
			start: func(t *testing.T) string {
				return peertest.StartSquid(t, peertest.SquidNTLM, "alice", testPassword).Addr
			}},
		{name: "squid basic", scheme: "Basic", offered: `offered: Basic realm="squid-basic"`, rounds: 2,
			start: func(t *testing.T) string {
				return peertest.StartSquid(t, peertest.SquidBasic, "alice", testPassword).Addr
			}},
		{name: "tinyproxy", scheme: "Basic", offered: `offered: Basic realm="Tinyproxy"`, rounds: 2,
			start: func(t *testing.T) string { return peertest.Tinyproxy(t, "alice", testPassword) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			addr := k.start(t)
			proxy := &url.URL{Scheme: "http", Host: addr}
			dial := func(t *testing.T, d *wsproxy.Dialer) error {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, _, err := d.Dial(ctx, "ws://"+ws+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
				if err != nil {
					return err
				}
				defer c.CloseNow()
				streamEcho(t, ctx, c, 32<<10)
				return c.Close(websocket.StatusNormalClosure, "")
			}
			t.Run("success, then the cache", func(t *testing.T) {
				var dials, connects, calls atomic.Int64
				logs := &logSink{}
				d := &wsproxy.Dialer{Proxy: http.ProxyURL(proxy), NetDial: countingDial(&dials), Logf: func(f string, a ...any) {
					logs.Logf(f, a...)
					if strings.HasPrefix(f, "-> CONNECT") {
						connects.Add(1)
					}
				}, Credentials: fixedCreds(&calls, "alice", testPassword)}
				require.NoError(t, dial(t, d))
				require.Contains(t, logs.String(), "auth: answering "+k.scheme)
				require.EqualValues(t, k.rounds, connects.Load(), "CONNECT requests")
				require.EqualValues(t, 1, calls.Load())
				if k.name != "tinyproxy" { // tinyproxy closes after its 407
					require.EqualValues(t, 1, dials.Load(), "the 407 and the answer share one TCP connection")
				}
				// Second dial: cached credentials; Digest and Basic go
				// preemptively (one CONNECT), NTLM runs its legs again.
				require.NoError(t, dial(t, d))
				require.EqualValues(t, 1, calls.Load(), "credentials asked once")
				second := connects.Load() - int64(k.rounds)
				if k.scheme == "NTLM" {
					require.EqualValues(t, 3, second)
				} else {
					require.EqualValues(t, 1, second, "no 407 round trip on the second dial")
				}
				assertNoSecrets(t, logs.String(), testPassword)
			})
			t.Run("wrong password", func(t *testing.T) {
				logs := &logSink{}
				d := &wsproxy.Dialer{Proxy: http.ProxyURL(proxy), Logf: logs.Logf, Credentials: fixedCreds(new(atomic.Int64), "alice", "wrong-"+testPassword)}
				err := dial(t, d)
				if k.wrongOK {
					require.NoError(t, err, "ntlm_fake_auth accepts any password")
					return
				}
				require.ErrorIs(t, err, wsproxy.ErrProxyCredentialsRejected)
				require.Contains(t, err.Error(), k.scheme+`, user "alice"`)
				assertNoSecrets(t, err.Error()+logs.String(), testPassword, "wrong-"+testPassword)
			})
			t.Run("no credentials", func(t *testing.T) {
				err := dial(t, &wsproxy.Dialer{Proxy: http.ProxyURL(proxy)})
				require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
				require.Contains(t, err.Error(), k.offered)
			})
		})
	}
}

// ntlm_fake_auth offers NTLM and Basic: restricted to Digest the Dialer
// says so instead of falling back to Basic; restricted to Basic it uses
// Basic.
func TestPeersSquidNTLMRestrictions(t *testing.T) {
	t.Parallel()
	squid := peertest.StartSquid(t, peertest.SquidNTLM, "alice", testPassword)
	proxy := &url.URL{Scheme: "http", Host: squid.Addr}
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(proxy), AuthSchemes: []wsproxy.AuthScheme{wsproxy.DigestAuth{}},
		Credentials: fixedCreds(new(atomic.Int64), "alice", testPassword)}
	_, err := d.DialContext(context.Background(), "tcp", squid.Addr)
	require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
	require.Contains(t, err.Error(), "no allowed scheme (allowed: Digest; offered: NTLM, Basic")

	logs := &logSink{}
	d = &wsproxy.Dialer{Proxy: http.ProxyURL(proxy), AuthSchemes: []wsproxy.AuthScheme{wsproxy.BasicAuth{}}, Logf: logs.Logf,
		Credentials: fixedCreds(new(atomic.Int64), "alice", testPassword)}
	c, err := d.DialContext(context.Background(), "tcp", squid.Addr)
	require.NoError(t, err)
	c.Close()
	require.Contains(t, logs.String(), `auth: answering Basic realm="squid-basic"`)
}

// Concurrent dials through squid's Digest share the cached key; each gets
// its own nonce count, and none fails.
func TestPeersSquidDigestConcurrent(t *testing.T) {
	t.Parallel()
	squid := peertest.StartSquid(t, peertest.SquidDigest, "alice", testPassword)
	echo := peertest.EchoServer(t)
	var calls atomic.Int64
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: squid.Addr}), Credentials: fixedCreds(&calls, "alice", testPassword)}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(context.Background(), "tcp", echo)
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// BenchmarkDialDigest dials through squid with digest_file_auth. After the
// first dial the Digest answer goes preemptively: connects/dial, the
// CONNECT requests per dial, stays at 1 (a little above when squid makes a
// nonce stale and one dial retries). Run with
//
//	go test -run '^$' -bench DialDigest .
func BenchmarkDialDigest(b *testing.B) {
	squid := peertest.StartSquid(b, peertest.SquidDigest, "alice", testPassword)
	echo := peertest.EchoServer(b)
	var connects atomic.Int64
	d := &wsproxy.Dialer{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: squid.Addr}),
		Credentials: func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
			return &wsproxy.Credentials{Username: "alice", Password: testPassword}, nil
		},
		Logf: func(f string, _ ...any) {
			if strings.HasPrefix(f, "-> CONNECT") {
				connects.Add(1)
			}
		},
	}
	dial := func() {
		c, err := d.DialContext(context.Background(), "tcp", echo)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	dial() // the one dial that meets a 407
	connects.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dial()
	}
	b.StopTimer()
	b.ReportMetric(float64(connects.Load())/float64(b.N), "connects/dial")
}
