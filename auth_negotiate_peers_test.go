package wsproxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

const kerberosPassword = "s3cret-Kerb-pw"

// kerberosRealm is a real MIT KDC, squid verifying tickets with
// negotiate_kerberos_auth (keeping the connection after a 407, and closing
// it after the first one), and websockify in front of a TCP echo, reached
// by the proxy's name so that an environment proxy applies to it.
type kerberosRealm struct {
	kdc     *peertest.KDC
	squids  map[string]*peertest.Squid // by "keep-alive" / "closing"
	target  string                     // "proxy.wsproxy.test:port": websockify, ws:// and wss://
	tls     *tls.Config
	ccache  string // alice's FILE: cache from kinit
	keytab  string // alice's client keytab
	expired string // a cache whose ticket has expired
	missing string // a cache path where nothing is
}

func startKerberosRealm(t *testing.T, also ...peertest.SquidAuth) *kerberosRealm {
	t.Helper()
	kdc := peertest.StartKDC(t)
	kdc.AddPrincipal(t, "alice", kerberosPassword)
	kdc.AddPrincipal(t, "HTTP/other.wsproxy.test", "") // a service squid has no key for
	r := &kerberosRealm{kdc: kdc, missing: filepath.Join(t.TempDir(), "no-ccache")}
	r.expired = kdc.Kinit(t, "alice", kerberosPassword, "-l", "1s")
	expiry := time.Now().Add(2 * time.Second)
	r.squids = map[string]*peertest.Squid{
		"keep-alive": peertest.StartSquidNegotiate(t, kdc, also...),
		"closing":    peertest.StartSquidNegotiateClosing(t, kdc, also...),
	}
	cert := peertest.SelfSigned(t, peertest.ProxyHost)
	_, port, _ := net.SplitHostPort(peertest.Websockify(t, peertest.EchoServer(t), cert.PEMFile))
	r.target = net.JoinHostPort(peertest.ProxyHost, port)
	r.tls = &tls.Config{RootCAs: cert.Pool}
	r.ccache = kdc.Kinit(t, "alice", kerberosPassword)
	r.keytab = kdc.Keytab(t, "alice")
	// The expired ticket's end is a point in time, not a readiness to poll.
	time.Sleep(time.Until(expiry))
	return r
}

// proxyURL is the squid's URL by the name its SPN has, or by host.
func (r *kerberosRealm) proxyURL(mode, host string) string {
	_, port, _ := net.SplitHostPort(r.squids[mode].Addr)
	if host == "" {
		host = peertest.ProxyHost
	}
	return "http://" + net.JoinHostPort(host, port)
}

// env is the test environment: the proxy for ws and wss, this realm's
// krb5.conf and the given ticket cache; extra adds variables.
func (r *kerberosRealm) env(proxy, ccache string, extra ...string) map[string]string {
	env := map[string]string{"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "KRB5_CONFIG": r.kdc.Krb5Conf, "KRB5CCNAME": ccache}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// krbDial is one dial's outcome.
type krbDial struct {
	err      error
	connects int   // CONNECT requests sent
	dials    int64 // TCP connections to the proxy
	trace    string
}

// dial opens a WebSocket to the realm's echo with d, streams through it,
// and checks that neither the error nor the trace holds a secret.
func (r *kerberosRealm) dial(t *testing.T, d *wsproxy.Dialer, scheme string) krbDial {
	t.Helper()
	var n atomic.Int64
	logs := &logSink{}
	d.NetDial, d.Logf, d.TLSClientConfig = countingDial(&n), logs.Logf, r.tls
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := d.Dial(ctx, scheme+"://"+r.target+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err == nil {
		streamEcho(t, ctx, c, 32<<10)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	}
	out := krbDial{err: err, connects: strings.Count(logs.String(), "-> CONNECT "), dials: n.Load(), trace: logs.String()}
	t.Log(out.trace)
	texts := out.trace
	if err != nil {
		texts += "\n" + err.Error()
	}
	assertNoSecrets(t, texts, kerberosPassword, "wrong-"+kerberosPassword)
	require.NotContains(t, texts, "Negotiate YII", "a Kerberos token in the trace")
	return out
}

// Through squid with negotiate_kerberos_auth, with the real KDC, by the
// public Dialer, over ws:// and wss://, with squid keeping the connection
// after a 407 and closing it after the first one: a ticket from kinit with
// the zero Dialer, a keytab, a password (AS exchange), and each failure
// with its typed error, never a loop.
func TestPeersNegotiateDialer(t *testing.T) {
	t.Parallel()
	r := startKerberosRealm(t)
	type want struct {
		errs  []error  // nil: success
		texts []string // in the error, or in the trace on success
	}
	cases := []struct {
		name      string
		setup     func(d *wsproxy.Dialer, mode string) // the zero Dialer when nil
		ccache    func(r *kerberosRealm) string
		extra     []string // environment
		proxyHost string
		want      want
	}{
		{name: "ticket from kinit in a FILE: cache, zero Dialer", ccache: func(r *kerberosRealm) string { return "FILE:" + r.ccache },
			want: want{texts: []string{"principal alice@WSPROXY.TEST", "SPN HTTP/proxy.wsproxy.test", "auth: answering Negotiate"}}},
		{name: "client keytab from KRB5_CLIENT_KTNAME", extra: []string{"KRB5_CLIENT_KTNAME", "FILE:" + r.keytab},
			want: want{texts: []string{"client keytab " + r.keytab}}},
		{name: "password only: AS exchange", setup: func(d *wsproxy.Dialer, _ string) {
			d.Credentials = fixedCreds(new(atomic.Int64), "alice", kerberosPassword)
		}, want: want{texts: []string{`getting a ticket with the password of "alice" from Dialer.Credentials`, "AS exchange"}}},
		{name: "password in the proxy URL", setup: func(d *wsproxy.Dialer, mode string) {
			u, _ := url.Parse(r.proxyURL(mode, ""))
			u.User = url.UserPassword("alice", kerberosPassword)
			d.Proxy = http.ProxyURL(u)
		}, want: want{texts: []string{"with credentials from the proxy URL"}}},
		{name: "wrong password", setup: func(d *wsproxy.Dialer, _ string) {
			d.Credentials = fixedCreds(new(atomic.Int64), "alice", "wrong-"+kerberosPassword)
		}, want: want{errs: []error{wsproxy.ErrProxyCredentialsRejected, wsproxy.ErrProxyAuthRequired, wsproxy.ErrNoKerberosTicket},
			texts: []string{"refused the password or key of alice@WSPROXY.TEST"}}},
		{name: "no ticket and no password", want: want{errs: []error{wsproxy.ErrProxyAuthRequired, wsproxy.ErrNoKerberosTicket},
			texts: []string{"no Kerberos ticket for the proxy's realm WSPROXY.TEST", "kinit"}}},
		{name: "expired ticket", ccache: func(r *kerberosRealm) string { return "FILE:" + r.expired },
			want: want{errs: []error{wsproxy.ErrProxyAuthRequired, wsproxy.ErrKerberosTicketExpired, wsproxy.ErrNoKerberosTicket},
				texts: []string{"expired", "kinit"}}},
		{name: "ticket for the wrong SPN", ccache: func(r *kerberosRealm) string { return "FILE:" + r.ccache },
			setup: func(d *wsproxy.Dialer, _ string) { d.ProxySPN = "HTTP/other.wsproxy.test" },
			want: want{errs: []error{wsproxy.ErrKerberosRejected, wsproxy.ErrProxyCredentialsRejected},
				texts: []string{"rejected the Kerberos ticket for HTTP/other.wsproxy.test", "is the SPN HTTP/other.wsproxy.test right?"}}},
		{name: "proxy by IP address: no such SPN", ccache: func(r *kerberosRealm) string { return "FILE:" + r.ccache }, proxyHost: "127.0.0.1",
			want: want{errs: []error{wsproxy.ErrProxyAuthRequired, wsproxy.ErrNoKerberosTicket}, texts: []string{"HTTP/127.0.0.1"}}},
		{name: "proxy by IP address with ProxySPN", ccache: func(r *kerberosRealm) string { return "FILE:" + r.ccache }, proxyHost: "127.0.0.1",
			setup: func(d *wsproxy.Dialer, _ string) { d.ProxySPN = peertest.ProxySPN },
			want:  want{texts: []string{"SPN HTTP/proxy.wsproxy.test (set explicitly)"}}},
	}
	for _, tc := range cases {
		eachRoute(t, tc.name, func(t *testing.T, mode, scheme string) {
			ccache := "FILE:" + r.missing
			if tc.ccache != nil {
				ccache = tc.ccache(r)
			}
			d := &wsproxy.Dialer{}
			wsproxy.SetTestHooks(d, wsproxy.TestHooks{Env: r.env(r.proxyURL(mode, tc.proxyHost), ccache, tc.extra...)})
			if tc.setup != nil {
				tc.setup(d, mode)
			}
			got := r.dial(t, d, scheme)
			wantDials := map[string]int64{"keep-alive": 1, "closing": 2}[mode]
			if tc.want.errs == nil {
				require.NoError(t, got.err)
				require.Equal(t, 2, got.connects, "a bare 407, then the ticket")
				require.Equal(t, wantDials, got.dials, "TCP connections to the proxy")
				for _, w := range tc.want.texts {
					require.Contains(t, got.trace, w)
				}
				return
			}
			require.Error(t, got.err)
			for _, e := range tc.want.errs {
				require.ErrorIs(t, got.err, e)
			}
			var pe *wsproxy.ProxyError
			require.ErrorAs(t, got.err, &pe)
			require.Equal(t, http.StatusProxyAuthRequired, pe.StatusCode)
			for _, w := range tc.want.texts {
				require.Contains(t, got.err.Error(), w)
			}
			if errors.Is(got.err, wsproxy.ErrKerberosRejected) {
				// The ticket went once; its refusal ends the dial.
				require.Equal(t, 2, got.connects, "a rejected ticket is never sent again")
				require.Equal(t, wantDials, got.dials)
				return
			}
			require.Equal(t, 1, got.connects, "nothing sent when no ticket could be had")
			require.Contains(t, got.trace, "auth: skipping Negotiate")
		})
	}
}

// A proxy offering Negotiate and NTLM together, as Active Directory
// proxies do: with a ticket, Negotiate is used and no password is asked
// for; without one, a password the KDC takes still goes to Kerberos, and
// one for a user the KDC does not know falls back to NTLM; the trace says
// why.
func TestPeersNegotiateBesideNTLMDialer(t *testing.T) {
	t.Parallel()
	r := startKerberosRealm(t, peertest.SquidNTLM)
	cases := []struct {
		name       string
		ccache     func(r *kerberosRealm) string
		user, pass string
		scheme     string // the scheme that opened the tunnel, or "" for an error
		spn        string // Dialer.ProxySPN
		texts      []string
	}{
		{name: "ticket: Negotiate, no password asked", ccache: func(r *kerberosRealm) string { return "FILE:" + r.ccache },
			user: "alice", pass: "unused", scheme: "Negotiate", texts: []string{"auth: answering Negotiate (the strongest usable; offered: Negotiate, NTLM"}},
		{name: "no ticket, alice's password: Kerberos by AS exchange", user: "alice", pass: kerberosPassword, scheme: "Negotiate",
			texts: []string{`getting a ticket with the password of "alice"`}},
		{name: "no ticket, a user the KDC does not know: NTLM", user: "bob", pass: "bobs-password", scheme: "NTLM",
			texts: []string{"auth: skipping Negotiate", "does not know bob@WSPROXY.TEST", `auth: answering NTLM with credentials from Dialer.Credentials`}},
		{name: "expired ticket, no password: nothing to answer with", ccache: func(r *kerberosRealm) string { return "FILE:" + r.expired },
			texts: []string{"auth: skipping Negotiate", "expired"}},
		{name: "ticket for the wrong SPN: refused, and no NTLM after it", ccache: func(r *kerberosRealm) string { return "FILE:" + r.ccache },
			user: "alice", pass: "unused", spn: "HTTP/other.wsproxy.test", texts: []string{"is the SPN HTTP/other.wsproxy.test right?"}},
	}
	for _, tc := range cases {
		eachRoute(t, tc.name, func(t *testing.T, mode, scheme string) {
			ccache := "FILE:" + r.missing
			if tc.ccache != nil {
				ccache = tc.ccache(r)
			}
			d := &wsproxy.Dialer{}
			wsproxy.SetTestHooks(d, wsproxy.TestHooks{Env: r.env(r.proxyURL(mode, ""), ccache)})
			var calls atomic.Int64
			if tc.user != "" {
				d.Credentials = fixedCreds(&calls, tc.user, tc.pass)
			}
			d.ProxySPN = tc.spn
			got := r.dial(t, d, scheme)
			assertNoSecrets(t, got.trace, "bobs-password", "unused")
			for _, w := range tc.texts {
				require.Contains(t, got.trace+"\n"+errText(got.err), w)
			}
			wantDials := map[string]int64{"keep-alive": 1, "closing": 2}[mode]
			switch tc.scheme {
			case "Negotiate":
				require.NoError(t, got.err)
				require.Equal(t, 2, got.connects)
				require.Equal(t, wantDials, got.dials)
				if tc.pass == "unused" {
					require.Zero(t, calls.Load(), "no password asked for with a ticket")
				}
			case "NTLM":
				require.NoError(t, got.err)
				require.Equal(t, 3, got.connects, "bare 407, NTLM negotiate, authenticate")
				require.Equal(t, wantDials, got.dials)
			case "":
				if tc.spn != "" {
					require.ErrorIs(t, got.err, wsproxy.ErrKerberosRejected)
					require.Equal(t, 2, got.connects, "the ticket once, then nothing: no NTLM after a refused ticket")
					require.Zero(t, calls.Load(), "no password asked for after a refused ticket")
					require.NotContains(t, got.trace, "NTLM [redacted]")
					return
				}
				require.ErrorIs(t, got.err, wsproxy.ErrProxyAuthRequired)
				require.ErrorIs(t, got.err, wsproxy.ErrKerberosTicketExpired)
				require.Equal(t, 1, got.connects)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Mutual authentication, end to end through the public Dialer: a proxy
// hands the client's token to MIT Kerberos's own acceptor
// (gss_accept_sec_context with the proxy's keytab) and returns its answer
// on the 200, as IIS-style proxies do. The Dialer verifies it; the same
// answer tampered with fails the dial with ErrKerberosMutualAuth.
func TestPeersNegotiateMutualAuth(t *testing.T) {
	t.Parallel()
	kdc := peertest.StartKDC(t)
	kdc.AddPrincipal(t, "alice", kerberosPassword)
	serviceKeytab := kdc.Keytab(t, peertest.ProxySPN)
	ccache := kdc.Kinit(t, "alice", kerberosPassword)
	peertest.EnsureHostsEntry(t, peertest.ProxyHost)
	target := newEchoServer(t, false).Listener.Addr().String()

	for _, tamper := range []bool{false, true} {
		tokens, answers := make(chan []byte, 1), make(chan []byte, 1)
		p := proxytest.New(t, proxytest.Config{Handle: func(c net.Conn, _ *http.Request) {
			fmt.Fprint(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return
			}
			tok, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(req.Header.Get("Proxy-Authorization"), "Negotiate "))
			tokens <- tok
			answer := <-answers
			fmt.Fprintf(c, "HTTP/1.1 200 Connection established\r\nProxy-Authenticate: Negotiate %s\r\n\r\n", base64.StdEncoding.EncodeToString(answer))
			_, _ = io.Copy(io.Discard, c) // until the client closes
		}})
		_, port, _ := net.SplitHostPort(p.Addr)
		logs := &logSink{}
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: net.JoinHostPort(peertest.ProxyHost, port)}), Logf: logs.Logf}
		wsproxy.SetTestEnv(d, map[string]string{"KRB5_CONFIG": kdc.Krb5Conf, "KRB5CCNAME": "FILE:" + ccache})
		errc := make(chan error, 1)
		go func() {
			c, err := d.DialContext(context.Background(), "tcp", target)
			if c != nil {
				c.Close()
			}
			errc <- err
		}()
		var tok []byte
		select {
		case tok = <-tokens:
		case err := <-errc:
			t.Fatalf("the dial ended before sending a token: %v", err)
		}
		r := peertest.GSSAccept(t, kdc, serviceKeytab, tok)
		require.Zero(t, r.Major, "MIT's acceptor refused the Dialer's token")
		require.Equal(t, "alice@WSPROXY.TEST", r.Client)
		require.NotEmpty(t, r.Token, "MIT's acceptor gave no mutual-authentication answer")
		answer := append([]byte(nil), r.Token...)
		if tamper {
			answer[len(answer)-3] ^= 0x40
		}
		answers <- answer
		err := <-errc
		t.Log(logs.String())
		if !tamper {
			require.NoError(t, err)
			require.Contains(t, logs.String(), "mutual authentication of HTTP/proxy.wsproxy.test verified")
			continue
		}
		require.ErrorIs(t, err, wsproxy.ErrKerberosMutualAuth)
		var pe *wsproxy.ProxyError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, http.StatusOK, pe.StatusCode)
		require.NotContains(t, logs.String(), "tunnel to")
	}
}

// eachRoute runs f as a parallel subtest for every way a case is dialed:
// squid keeping the connection after its 407 or closing it, and ws:// or
// wss:// inside the tunnel.
func eachRoute(t *testing.T, name string, f func(t *testing.T, mode, scheme string)) {
	for _, mode := range []string{"keep-alive", "closing"} {
		for _, scheme := range []string{"ws", "wss"} {
			t.Run(name+"/"+mode+"/"+scheme, func(t *testing.T) {
				t.Parallel()
				f(t, mode, scheme)
			})
		}
	}
}
