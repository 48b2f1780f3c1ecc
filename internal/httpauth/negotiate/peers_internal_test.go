package negotiate

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

const alicePassword = "s3cret-Kerb"

// kerberosPeers is one KDC and one squid trusting it, shared by the cases
// of a test.
type kerberosPeers struct {
	kdc   *peertest.KDC
	squid *peertest.Squid
	echo  string

	mu    sync.Mutex
	trace []string // every trace line of every case
}

func startKerberosPeers(t *testing.T) *kerberosPeers {
	t.Helper()
	kdc := peertest.StartKDC(t)
	kdc.AddPrincipal(t, "alice", alicePassword)
	kdc.AddPrincipal(t, "HTTP/other.wsproxy.test", "")
	return &kerberosPeers{kdc: kdc, squid: peertest.StartSquidNegotiate(t, kdc), echo: peertest.EchoServer(t)}
}

// config is a Config reading only this realm's files: no real environment.
func (p *kerberosPeers) config(t *testing.T, env ...string) *Config {
	missing := filepath.Join(t.TempDir(), "no-such-ccache")
	env = append([]string{"KRB5_CONFIG", p.kdc.Krb5Conf, "KRB5CCNAME", "FILE:" + missing}, env...)
	return &Config{Getenv: envMap(env...), Trace: func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		p.mu.Lock()
		p.trace = append(p.trace, line)
		p.mu.Unlock()
	}}
}

// checkTrace: the trace says which principal, SPN and cache were used, and
// holds no password and no token (GSS tokens start "YII" in base64).
func (p *kerberosPeers) checkTrace(t *testing.T, wants ...string) {
	t.Helper()
	p.mu.Lock()
	all := strings.Join(p.trace, "\n")
	p.mu.Unlock()
	for _, secret := range []string{alicePassword, "wrong-password", "whatever", "YII"} {
		if strings.Contains(all, secret) {
			t.Errorf("the trace contains %q", secret)
		}
	}
	for _, w := range wants {
		if !strings.Contains(all, w) {
			t.Errorf("the trace never says %q", w)
		}
	}
}

// proxyConn is a raw connection to squid with its reader.
type proxyConn struct {
	net.Conn
	br *bufio.Reader
}

func dialProxy(t *testing.T, addr string) *proxyConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &proxyConn{Conn: c, br: bufio.NewReader(c)}
}

// connect writes a CONNECT to target with the optional Negotiate token
// and reads the answer; a non-2xx body is drained so the connection can be
// reused.
func (c *proxyConn) connect(t *testing.T, target string, token []byte) *http.Response {
	t.Helper()
	req := fmt.Sprintf("CONNECT %[1]s HTTP/1.1\r\nHost: %[1]s\r\n", target)
	if token != nil {
		req += "Proxy-Authorization: Negotiate " + base64.StdEncoding.EncodeToString(token) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("reading the CONNECT answer: %v", err)
	}
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp
}

// negotiateChallenge returns the token of the response's Negotiate
// challenge (nil for a bare "Negotiate") and whether there was one.
func negotiateChallenge(t *testing.T, resp *http.Response) ([]byte, bool) {
	t.Helper()
	for _, v := range resp.Header.Values("Proxy-Authenticate") {
		scheme, param, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Negotiate") {
			continue
		}
		if param = strings.TrimSpace(param); param == "" {
			return nil, true
		}
		b, err := base64.StdEncoding.DecodeString(param)
		if err != nil {
			t.Fatalf("Negotiate token is not base64: %v", err)
		}
		return b, true
	}
	return nil, false
}

// tunnelEchoes checks that bytes go through the tunnel to the echo server
// and back.
func tunnelEchoes(t *testing.T, c *proxyConn) {
	t.Helper()
	msg := "hello through kerberos\n"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got, err := c.br.ReadString('\n')
	if err != nil || got != msg {
		t.Fatalf("echo through the tunnel: %q, %v", got, err)
	}
}

// authenticate runs the whole exchange a Dialer will: CONNECT, 407
// Negotiate, token on the same connection (keepAlive) or a new one, 200,
// mutual authentication check, echo. It returns the error of Start or of
// the proxy's answer.
func authenticate(t *testing.T, p *kerberosPeers, cfg *Config, host string, keepAlive bool) error {
	t.Helper()
	c := dialProxy(t, p.squid.Addr)
	resp := c.connect(t, p.echo, nil)
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("first CONNECT: %s, want 407", resp.Status)
	}
	if tok, ok := negotiateChallenge(t, resp); !ok || tok != nil {
		t.Fatalf("first 407 offers %q, want a bare Negotiate", resp.Header.Values("Proxy-Authenticate"))
	}
	if !keepAlive {
		c.Close()
		c = dialProxy(t, p.squid.Addr)
	}
	x := cfg.NewContext(host)
	token, err := x.Start(context.Background())
	if err != nil {
		return err
	}
	resp = c.connect(t, p.echo, token)
	if resp.StatusCode == http.StatusProxyAuthRequired {
		return x.Rejected()
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT with the token: %s", resp.Status)
	}
	answer, _ := negotiateChallenge(t, resp)
	t.Logf("200 with a %d-byte mutual-authentication token", len(answer))
	if err := x.Verify(answer); err != nil {
		return err
	}
	tunnelEchoes(t, c)
	return nil
}

func TestPeersNegotiateSquid(t *testing.T) {
	p := startKerberosPeers(t)
	ccache := p.kdc.Kinit(t, "alice", alicePassword)
	keytab := p.kdc.Keytab(t, "alice")
	withServiceTicket := p.kdc.Kinit(t, "alice", alicePassword)
	p.kdc.ServiceTicket(t, withServiceTicket, peertest.ProxySPN)

	type result int
	const (
		ok result = iota
		noTicket
		rejected
	)
	cases := []struct {
		name  string
		cfg   *Config
		host  string
		want  result
		is    error // for failures: the sentinel the error must match
		texts []string
	}{
		{name: "ticket from kinit in a FILE: cache", cfg: p.config(t, "KRB5CCNAME", "FILE:"+ccache), want: ok},
		{name: "ticket cache as a bare path", cfg: p.config(t, "KRB5CCNAME", ccache), want: ok},
		{name: "service ticket already in the cache (kvno)", cfg: p.config(t, "KRB5CCNAME", withServiceTicket), want: ok},
		{name: "client keytab from KRB5_CLIENT_KTNAME", cfg: p.config(t, "KRB5_CLIENT_KTNAME", "FILE:"+keytab), want: ok},
		{name: "password only (AS exchange)", cfg: with(p.config(t), func(c *Config) { c.Username, c.Password = "alice", alicePassword }), want: ok},
		{name: "password with realm", cfg: with(p.config(t), func(c *Config) { c.Username, c.Password = "alice@WSPROXY.TEST", alicePassword }), want: ok},
		{name: "wrong password", cfg: with(p.config(t), func(c *Config) { c.Username, c.Password = "alice", "wrong-password" }),
			want: noTicket, is: ErrPreauthFailed, texts: []string{"alice@WSPROXY.TEST"}},
		{name: "unknown user", cfg: with(p.config(t), func(c *Config) { c.Username, c.Password = "mallory", "whatever" }),
			want: noTicket, is: ErrUnknownPrincipal, texts: []string{"mallory@WSPROXY.TEST"}},
		{name: "no ticket and no password", cfg: p.config(t), want: noTicket, is: ErrNoTicket,
			texts: []string{"WSPROXY.TEST", "kinit"}},
		{name: "ticket for the wrong SPN", cfg: with(p.config(t, "KRB5CCNAME", ccache), func(c *Config) { c.SPN = "HTTP/other.wsproxy.test" }),
			want: rejected, is: ErrRejected, texts: []string{"HTTP/other.wsproxy.test", "SPN"}},
		{name: "proxy by IP address: no such SPN", cfg: p.config(t, "KRB5CCNAME", ccache), host: "127.0.0.1",
			want: noTicket, is: ErrUnknownService, texts: []string{"HTTP/127.0.0.1"}},
		{name: "proxy by IP address with the SPN override", cfg: with(p.config(t, "KRB5CCNAME", ccache), func(c *Config) { c.SPN = peertest.ProxySPN }),
			host: "127.0.0.1", want: ok},
		{name: "SPN override with realm", cfg: with(p.config(t, "KRB5CCNAME", ccache), func(c *Config) { c.SPN = peertest.ProxySPN + "@WSPROXY.TEST" }),
			host: "localhost", want: ok},
	}
	ran := 0
	for _, tc := range cases {
		for _, keepAlive := range []bool{true, false} {
			name := tc.name + map[bool]string{true: "/same connection", false: "/new connection"}[keepAlive]
			t.Run(name, func(t *testing.T) {
				ran++
				host := tc.host
				if host == "" {
					host = peertest.ProxyHost
				}
				err := authenticate(t, p, tc.cfg, host, keepAlive)
				switch tc.want {
				case ok:
					if err != nil {
						t.Fatalf("want a tunnel, got %v", err)
					}
					return
				case noTicket:
					if !FallbackAllowed(err) {
						t.Errorf("FallbackAllowed(%v) = false, want true", err)
					}
				case rejected:
					if err == nil || FallbackAllowed(err) {
						t.Errorf("FallbackAllowed(%v) = true, want false", err)
					}
				}
				if !errors.Is(err, tc.is) {
					t.Fatalf("error %v does not match %v", err, tc.is)
				}
				checkErrorText(t, err, tc.texts...)
			})
		}
	}
	if ran < 2*len(cases) { // -run chose some cases: only the secrets can be checked
		p.checkTrace(t)
		return
	}
	p.checkTrace(t, "principal alice@WSPROXY.TEST", "SPN HTTP/proxy.wsproxy.test", "ticket cache FILE:"+ccache,
		"service ticket for HTTP/proxy.wsproxy.test taken from the ticket cache",
		"ticket cache skipped", "client keytab", "AS exchange", "no keytab and no password")
}

// checkErrorText checks that the error says what it must and never leaks a
// password.
func checkErrorText(t *testing.T, err error, texts ...string) {
	t.Helper()
	msg := err.Error()
	for _, s := range texts {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
	for _, secret := range []string{alicePassword, "wrong-password", "whatever"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains a password", msg)
		}
	}
}

func with(c *Config, f func(*Config)) *Config { f(c); return c }

func TestPeersNegotiateExpiredTicket(t *testing.T) {
	p := startKerberosPeers(t)
	ccache := p.kdc.Kinit(t, "alice", alicePassword, "-l", "1s")
	cache, err := readCapped(ccache, maxCCacheSize)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := parseCCache(cache)
	if err != nil {
		t.Fatal(err)
	}
	tgt, found := findTGT(cc, "WSPROXY.TEST")
	if !found {
		t.Fatal("no TGT in the kinit cache")
	}
	// Wait for the ticket's end, a point in time rather than a readiness.
	time.Sleep(time.Until(tgt.EndTime.Add(1100 * time.Millisecond)))

	cfg := p.config(t, "KRB5CCNAME", "FILE:"+ccache)
	_, err = cfg.NewContext(peertest.ProxyHost).Start(context.Background())
	if !errors.Is(err, ErrTicketExpired) || !FallbackAllowed(err) {
		t.Fatalf("got %v, want an expired-ticket error that allows fallback", err)
	}
	checkErrorText(t, err, "expired", "alice@WSPROXY.TEST", "kinit")

	// With a password as well, the expired cache is skipped for an AS exchange.
	cfg.Username, cfg.Password = "alice", alicePassword
	if err := authenticate(t, p, cfg, peertest.ProxyHost, true); err != nil {
		t.Fatalf("password after an expired cache: %v", err)
	}
}

func TestPeersNegotiateKDCUnreachable(t *testing.T) {
	peertest.Require(t, "kinit", "apt-get install -y krb5-user")
	dir := t.TempDir()
	conf := filepath.Join(dir, "krb5.conf")
	port := peertest.FreePort(t) // nothing listens there
	peertest.WriteFile(t, conf, peertest.KerberosClientConfig(peertest.KerberosRealm, fmt.Sprintf("127.0.0.1:%d", port)), 0o644)
	cfg := &Config{Username: "alice", Password: alicePassword, Trace: t.Logf,
		Getenv: envMap("KRB5_CONFIG", conf, "KRB5CCNAME", filepath.Join(dir, "none"))}
	_, err := cfg.NewContext(peertest.ProxyHost).Start(context.Background())
	if !errors.Is(err, ErrKDCUnreachable) || !FallbackAllowed(err) {
		t.Fatalf("got %v, want KDC unreachable", err)
	}
	checkErrorText(t, err, "WSPROXY.TEST")
}

// TestPeersNegotiateMutualAuthMIT hands Start's token to MIT Kerberos's own
// acceptor (squid's helper does the same but keeps the answer), then
// checks MIT's mutual-authentication answer with Verify.
func TestPeersNegotiateMutualAuthMIT(t *testing.T) {
	kdc := peertest.StartKDC(t)
	kdc.AddPrincipal(t, "alice", alicePassword)
	serviceKeytab := kdc.Keytab(t, peertest.ProxySPN)
	ccache := kdc.Kinit(t, "alice", alicePassword)
	cfg := &Config{Trace: t.Logf, Getenv: envMap("KRB5_CONFIG", kdc.Krb5Conf, "KRB5CCNAME", "FILE:"+ccache)}

	x := cfg.NewContext(peertest.ProxyHost)
	token, err := x.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := peertest.GSSAccept(t, kdc, serviceKeytab, token)
	if r.Major != 0 || r.Client != "alice@WSPROXY.TEST" || r.Flags&2 == 0 || len(r.Token) == 0 {
		t.Fatalf("MIT acceptor: major %#x minor %d flags %#x client %q, %d-byte answer; want complete, alice, mutual, an answer",
			r.Major, r.Minor, r.Flags, r.Client, len(r.Token))
	}
	if err := x.Verify(r.Token); err != nil {
		t.Fatalf("Verify of MIT's answer: %v", err)
	}

	// The same answer for another connection's token does not verify.
	y := cfg.NewContext(peertest.ProxyHost)
	if _, err := y.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := y.Verify(r.Token); !errors.Is(err, ErrMutualAuth) || FallbackAllowed(err) {
		t.Fatalf("Verify of another connection's answer: %v, want ErrMutualAuth", err)
	}
	// Nor does a tampered one.
	bad := append([]byte(nil), r.Token...)
	bad[len(bad)-3] ^= 0x40
	if err := x.Verify(bad); !errors.Is(err, ErrMutualAuth) {
		t.Fatalf("Verify of a tampered answer: %v, want ErrMutualAuth", err)
	}
}

// TestPeersNegotiateBesideNTLM: a proxy offering Negotiate and NTLM, as
// Active Directory proxies do, lists Negotiate first and takes a ticket.
func TestPeersNegotiateBesideNTLM(t *testing.T) {
	kdc := peertest.StartKDC(t)
	kdc.AddPrincipal(t, "alice", alicePassword)
	p := &kerberosPeers{kdc: kdc, squid: peertest.StartSquidNegotiate(t, kdc, peertest.SquidNTLM), echo: peertest.EchoServer(t)}
	c := dialProxy(t, p.squid.Addr)
	resp := c.connect(t, p.echo, nil)
	var schemes []string
	for _, v := range resp.Header.Values("Proxy-Authenticate") {
		s, _, _ := strings.Cut(v, " ")
		schemes = append(schemes, s)
	}
	if resp.StatusCode != http.StatusProxyAuthRequired || strings.Join(schemes, ",") != "Negotiate,NTLM" {
		t.Fatalf("%s offering %q, want 407 offering Negotiate then NTLM", resp.Status, schemes)
	}
	cfg := p.config(t, "KRB5CCNAME", "FILE:"+kdc.Kinit(t, "alice", alicePassword))
	if err := authenticate(t, p, cfg, peertest.ProxyHost, true); err != nil {
		t.Fatal(err)
	}
	p.checkTrace(t, "principal alice@WSPROXY.TEST")
}
