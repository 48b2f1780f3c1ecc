package wsproxy_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log"
	"net/http"
	"net/url"
	"os"

	"github.com/wsproxy/wsproxy"
)

// A Negotiate (Kerberos/SPNEGO) scheme of the program's own, in place of
// the built-in NegotiateAuth: the token comes from whatever the program
// uses, such as the system's GSS-API library through cgo.
type negotiateScheme struct {
	// token returns the SPNEGO token for the proxy's service principal
	// ("HTTP/proxy.corp.example"), given the server's token (nil at first).
	token func(ctx context.Context, spn string, server []byte) ([]byte, error)
}

func (negotiateScheme) Name() string { return "Negotiate" }

// Strength: above Digest, so Negotiate wins when the proxy offers it.
func (negotiateScheme) Strength(wsproxy.Challenge) int { return wsproxy.StrengthNegotiate }

// NeedsCredentials: the logged-in user's ticket is used, no password.
func (negotiateScheme) NeedsCredentials() bool { return false }

func (n negotiateScheme) Start(_ context.Context, proxy *url.URL, _ string, _ *wsproxy.Credentials) (wsproxy.AuthSession, error) {
	return &negotiateSession{scheme: n, spn: "HTTP/" + proxy.Hostname()}, nil
}

type negotiateSession struct {
	scheme negotiateScheme
	spn    string
	rounds int
}

func (s *negotiateSession) Answer(ctx context.Context, ch wsproxy.Challenge) (string, error) {
	if s.rounds > 0 && ch.Token68 == "" {
		return "", wsproxy.ErrProxyCredentialsRejected // a bare challenge again: refused
	}
	var server []byte
	if ch.Token68 != "" {
		var err error
		if server, err = base64.StdEncoding.DecodeString(ch.Token68); err != nil {
			return "", err
		}
	}
	tok, err := s.scheme.token(ctx, s.spn, server)
	if err != nil {
		return "", err
	}
	s.rounds++
	return "Negotiate " + base64.StdEncoding.EncodeToString(tok), nil
}

// A continuation round answers a challenge valid on its connection only.
func (s *negotiateSession) ConnectionBound() bool { return s.rounds > 1 }
func (s *negotiateSession) Done() bool            { return s.rounds >= 3 }

// Plug a custom scheme in next to the built-in ones: the Dialer picks the
// strongest the proxy offers (Negotiate, then Digest, NTLM, Basic). For a
// name the built-in schemes also answer, list it first: the first scheme
// of a name wins.
func ExampleAuthScheme() {
	kerberos := func(ctx context.Context, spn string, server []byte) ([]byte, error) {
		// e.g. gss_init_sec_context through cgo
		return nil, errors.New("wire up your Kerberos library here")
	}
	d := &wsproxy.Dialer{
		AuthSchemes: append([]wsproxy.AuthScheme{negotiateScheme{token: kerberos}}, wsproxy.DefaultAuthSchemes()...),
		Logf:        log.Printf, // says which scheme was chosen and why
	}
	_, _, err := d.Dial(context.Background(), "wss://sync.example.com/db/_blipsync", nil)
	if err != nil {
		log.Print(err)
	}
}

// Digest, NTLM and Basic are on by default; AuthSchemes restricts them
// (here: never send a password in clear), Credentials supplies the password
// when the proxy asks, and later dials reuse what worked: Digest goes
// preemptively, without a 407 round trip.
func ExampleDialer_AuthSchemes() {
	d := &wsproxy.Dialer{
		Proxy:       http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.corp.example:3128"}),
		AuthSchemes: []wsproxy.AuthScheme{wsproxy.DigestAuth{}, wsproxy.NTLMAuth{}},
		Credentials: func(ctx context.Context, r *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
			log.Printf("proxy %s asks for %s credentials (realm %q)", r.Proxy.Host, r.Scheme, r.Realm)
			return &wsproxy.Credentials{Username: `CORP\alice`, Password: os.Getenv("PROXY_PASSWORD")}, nil
		},
		UseNetrc: true, // then ~/.netrc, when the callback has none
	}
	conn, _, err := d.Dial(context.Background(), "ws://chat.example.com/socket", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.CloseNow()
}

// Behind a Kerberos proxy (Active Directory, squid with
// negotiate_kerberos_auth), a user who has run kinit, or is logged on to
// the Windows domain, needs no configuration at all: the zero Dialer finds
// the proxy in the environment or the system settings and answers its
// Negotiate challenge with the user's ticket. Without a ticket it falls
// back to the next scheme the proxy offers; with nothing else to answer,
// the error says what to do.
func ExampleNegotiateAuth() {
	var d wsproxy.Dialer
	d.Logf = log.Printf // the principal, SPN and ticket cache used, or why Negotiate was skipped
	conn, _, err := d.Dial(context.Background(), "wss://sync.example.com/db/_blipsync", nil)
	switch {
	case errors.Is(err, wsproxy.ErrNoKerberosTicket):
		log.Fatalf("no Kerberos ticket; run kinit: %v", err)
	case errors.Is(err, wsproxy.ErrKerberosRejected):
		log.Fatalf("the proxy refused the ticket; check its service principal: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	defer conn.CloseNow()
}

// An unattended service authenticates with its own keytab, to a proxy it
// reaches by IP address, so the proxy's service principal is named.
func ExampleDialer_ProxySPN() {
	d := &wsproxy.Dialer{
		Proxy:    http.ProxyURL(&url.URL{Scheme: "http", Host: "10.0.0.8:3128"}),
		ProxySPN: "HTTP/proxy.corp.example",
		AuthSchemes: []wsproxy.AuthScheme{
			wsproxy.NegotiateAuth{Keytab: "/etc/sync/client.keytab", Principal: "svc-sync@CORP.EXAMPLE"},
		},
	}
	// What it would use (keytab, principal, SPN), as "wsdial -show-proxy" prints it.
	log.Print(d.DescribeNegotiate(context.Background(), &url.URL{Scheme: "http", Host: "10.0.0.8:3128"}))
	conn, _, err := d.Dial(context.Background(), "ws://chat.example.com/socket", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.CloseNow()
}
