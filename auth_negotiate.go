package wsproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wsproxy/wsproxy/internal/httpauth/negotiate"
)

// NegotiateAuth is the Negotiate scheme (RFC 4559): SPNEGO with Kerberos,
// the single sign-on of Active Directory proxies. It is in
// DefaultAuthSchemes and wins over every other scheme a proxy offers, so the
// zero Dialer answers "Proxy-Authenticate: Negotiate" the way a browser
// does, with the ticket the user got at login and no password anywhere.
//
// # Where the Kerberos identity comes from
//
// On Linux, macOS and the BSDs, in pure Go, in this order (each step and
// why one was skipped is in the Dialer's Logf trace; never a ticket, key,
// token or password):
//
//  1. the user's ticket cache: CCache, else $KRB5CCNAME ("FILE:" prefix or
//     a bare path, or a "DIR:" collection), else FILE:/tmp/krb5cc_<uid>.
//     Cache types pure Go cannot read (KCM:, KEYRING:, API:, as macOS uses
//     by default) are refused with an error saying to kinit into a FILE:
//     cache;
//  2. a client keytab, for services that run unattended: Keytab, else
//     $KRB5_CLIENT_KTNAME; its principal is Principal, else its first entry;
//  3. a user name and password from the Dialer's credential sources, in the
//     order documented on Dialer.Credentials (the proxy URL, the cache of
//     what worked, the Credentials callback, netrc), turned into a ticket
//     by an AS exchange with the KDC. The proxy URL's credentials are used
//     from the start; the other sources are asked only when no ticket could
//     be had otherwise (a callback that prompts the user is not called for
//     a user who has done kinit). A password the KDC refuses is not tried
//     again in the dial, neither for Kerberos nor for another scheme.
//
// The Kerberos configuration is Krb5Conf, else $KRB5_CONFIG, else
// /etc/krb5.conf (the proxy host's realm by [domain_realm], its KDCs by
// [realms], DNS SRV look-ups as its dns_lookup_kdc says); without any file,
// KDCs are found through DNS. The environment is read through the Dialer
// (in tests, its test environment).
//
// On Windows, the logon session's credentials answer through SSPI (no
// password, no krb5.conf), or the proxy URL's user and password when it
// carries them; SSPI's Negotiate package itself uses NTLM inside SPNEGO when
// Kerberos cannot be used. Setting Keytab, CCache or Krb5Conf selects the
// pure-Go path on Windows too.
//
// # The proxy's service principal
//
// The ticket is for SPN, else Dialer.ProxySPN, else "HTTP/" + the proxy host
// as written in the proxy URL, lower-cased (a proxy reached by IP address or
// by an alias needs the override, or CanonicalizeHost when the alias is a
// DNS CNAME).
//
// # Fallback and failures
//
// When no ticket can be had (no cache, expired ticket, KDC unreachable,
// unknown principal, no password), nothing is sent and the Dialer answers
// the next scheme the proxy offered: NTLM, then Digest or Basic, each under
// its own rules (no password in cleartext the proxy did not ask for). When
// nothing else is offered, the dial fails with ErrProxyAuthRequired and the
// reason, such as "no Kerberos ticket for the proxy's realm EXAMPLE.COM
// (run kinit)", matching ErrNoKerberosTicket and, for an expired ticket,
// ErrKerberosTicketExpired; a password the KDC refused also matches
// ErrProxyCredentialsRejected. A ticket the proxy refuses (another 407)
// ends the dial at once with ErrKerberosRejected and
// ErrProxyCredentialsRejected, naming the SPN to check: it is never retried
// and no other scheme is tried after it. When the proxy's 200 carries a
// "Proxy-Authenticate: Negotiate <token>" (mutual authentication), it is
// verified and a token that does not verify fails the dial with
// ErrKerberosMutualAuth; its absence is fine, as most proxies send none.
//
// Each connection gets a fresh token, so a proxy that closes the connection
// after its first 407 is answered on a new one. A KDC exchange is bounded
// by the Kerberos library's own timeouts (5 s per KDC) rather than by the
// dial's context.
type NegotiateAuth struct {
	// SPN overrides the proxy's service principal, as
	// "HTTP/proxy.example.com" or "HTTP/proxy.example.com@EXAMPLE.COM".
	// Default: Dialer.ProxySPN, else "HTTP/<proxy host as written>".
	SPN string
	// CanonicalizeHost resolves the proxy host's DNS CNAME before forming
	// the default SPN, as browsers can. Off by default: DNS answers would
	// choose the principal. Ignored when an SPN is set.
	CanonicalizeHost bool
	// Principal is the client principal ("alice" or "alice@EXAMPLE.COM")
	// to use with a keytab or a ticket cache: a cache of another principal
	// is skipped. Default: the user name of the credentials in use, else
	// the cache's principal, else the keytab's first entry.
	Principal string
	// Keytab is a client keytab file. Default: $KRB5_CLIENT_KTNAME.
	Keytab string
	// CCache is the ticket cache, in $KRB5CCNAME's syntax. Default:
	// $KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>.
	CCache string
	// Krb5Conf is the Kerberos configuration file. Default: $KRB5_CONFIG,
	// else /etc/krb5.conf.
	Krb5Conf string
}

// Errors of the Negotiate scheme, for errors.Is on a dial's error.
var (
	// ErrNoKerberosTicket: no Kerberos ticket could be had (no cache,
	// expired ticket, unreadable cache type, KDC unreachable or refusing,
	// no password). Nothing was sent to the proxy.
	ErrNoKerberosTicket = negotiate.ErrNoTicketObtained
	// ErrKerberosTicketExpired: the cached ticket-granting ticket has
	// expired (run kinit). It also matches ErrNoKerberosTicket.
	ErrKerberosTicketExpired = negotiate.ErrTicketExpired
	// ErrKDCUnreachable: no KDC of the realm answered. It also matches
	// ErrNoKerberosTicket.
	ErrKDCUnreachable = negotiate.ErrKDCUnreachable
	// ErrKerberosRejected: the proxy answered the Kerberos ticket with
	// another 407, most often because its service principal is not the
	// one the ticket was for (see NegotiateAuth.SPN and Dialer.ProxySPN).
	ErrKerberosRejected = negotiate.ErrRejected
	// ErrKerberosMutualAuth: the proxy's mutual-authentication token on
	// its 200 did not verify.
	ErrKerberosMutualAuth = negotiate.ErrMutualAuth
)

// Name returns "Negotiate".
func (NegotiateAuth) Name() string { return "Negotiate" }

// Strength returns StrengthNegotiate.
func (NegotiateAuth) Strength(Challenge) int { return StrengthNegotiate }

// NeedsCredentials returns false: a ticket needs no password. Within a
// Dialer the password sources are still asked when no ticket can be had.
func (NegotiateAuth) NeedsCredentials() bool { return false }

// Start makes the first Negotiate token for one CONNECT through proxy, from
// the process environment, with creds (may be nil) as the password source.
// A Dialer does not call it: it calls the same code with its own
// environment, trace, ProxySPN and credential sources. The error matches
// ErrNoKerberosTicket when no ticket could be had.
func (n NegotiateAuth) Start(ctx context.Context, proxy *url.URL, _ string, creds *Credentials) (AuthSession, error) {
	s, err := n.newSession(ctx, negotiateEnv{}, proxy.Hostname(), creds)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// negotiateEnv is what a dial lends the scheme: its environment, trace and
// SPN override. The zero value is the process environment, no trace.
type negotiateEnv struct {
	getenv func(string) string
	logf   func(format string, args ...any)
	spn    string // Dialer.ProxySPN
}

func (e negotiateEnv) tracef(format string, args ...any) {
	if e.logf != nil {
		e.logf("auth: "+format, args...)
	}
}

// config is the mechanism's configuration for one attempt.
func (n NegotiateAuth) config(env negotiateEnv, creds *Credentials) *negotiate.Config {
	cfg := &negotiate.Config{
		SPN: n.SPN, CanonicalizeHost: n.CanonicalizeHost, Username: n.Principal,
		Keytab: n.Keytab, CCache: n.CCache, Krb5Conf: n.Krb5Conf,
		Getenv: env.getenv,
	}
	if cfg.SPN == "" {
		cfg.SPN = env.spn
	}
	if env.logf != nil {
		cfg.Trace = env.tracef
	}
	if creds != nil && creds.Username != "" && creds.Password != "" {
		cfg.Username, cfg.Password = creds.Username, creds.Password
	}
	return cfg
}

// pureGo reports whether the pure-Go Kerberos path was asked for
// explicitly, which on Windows replaces SSPI.
func (n NegotiateAuth) pureGo() bool {
	return n.Keytab != "" || n.CCache != "" || n.Krb5Conf != ""
}

// newSession makes the first token for the proxy at host with creds (nil:
// a ticket only).
func (n NegotiateAuth) newSession(ctx context.Context, env negotiateEnv, host string, creds *Credentials) (*negotiateSession, error) {
	var x negotiate.Session
	if !n.pureGo() {
		x, _ = sspiSession(host, n.spn(env), creds, env.tracef)
	}
	if x == nil {
		x = n.config(env, creds).NewContext(host)
	}
	tok, err := x.Start(ctx)
	if err != nil {
		x.Close()
		return nil, err
	}
	return &negotiateSession{x: x, first: tok}, nil
}

func (n NegotiateAuth) spn(env negotiateEnv) string {
	if n.SPN != "" {
		return n.SPN
	}
	return env.spn
}

// negotiateSession carries one connection's Negotiate exchange.
type negotiateSession struct {
	x     negotiate.Session
	first []byte // Start's token, for the first answer
	sent  bool   // the first token went out
	bound bool   // the last answer continues a multi-leg exchange
	creds *Credentials
	src   credSource
}

// Answer sends the first token, then hands each later challenge's token to
// the mechanism: Kerberos refuses (one leg only), SSPI may continue.
func (s *negotiateSession) Answer(_ context.Context, ch Challenge) (string, error) {
	if !s.sent {
		s.sent = true
		return "Negotiate " + negotiate.EncodeToken(s.first), nil
	}
	tok, err := negotiate.DecodeToken(ch.Token68)
	if err != nil {
		return "", finalRefusal(fmt.Errorf("the proxy's Negotiate challenge: %w", err))
	}
	out, err := s.x.Next(tok)
	if err != nil {
		return "", finalRefusal(err)
	}
	s.bound = true
	return "Negotiate " + negotiate.EncodeToken(out), nil
}

// ConnectionBound is true for a continuation leg (SSPI's NTLM inside
// SPNEGO); a Kerberos token may go on any connection.
func (s *negotiateSession) ConnectionBound() bool { return s.bound }

// Done is false: every 407 goes to Answer, which refuses a rejected ticket
// for good instead of letting the Dialer try other credentials.
func (s *negotiateSession) Done() bool { return false }

// usedCredentials says which password, if any, got the ticket.
func (s *negotiateSession) usedCredentials() (*Credentials, credSource) { return s.creds, s.src }

// verifySuccess checks the mutual-authentication token of the proxy's 200,
// if it sent one.
func (s *negotiateSession) verifySuccess(h http.Header) error {
	var tok []byte
	chs, _ := ParseChallenges(h.Values("Proxy-Authenticate"))
	for _, ch := range chs {
		if strings.EqualFold(ch.Scheme, "Negotiate") && ch.Token68 != "" {
			var err error
			if tok, err = negotiate.DecodeToken(ch.Token68); err != nil {
				return fmt.Errorf("%w: %w", negotiate.ErrMutualAuth, err)
			}
			break
		}
	}
	return s.x.Verify(tok)
}

func (s *negotiateSession) Close() error { return s.x.Close() }

// boundNegotiate is NegotiateAuth within one dial: it reads the Dialer's
// environment, traces to its Logf, and asks the dial's credential sources
// for a password only when no ticket can be had.
type boundNegotiate struct {
	NegotiateAuth
	a   *authState
	o   offer
	all []Challenge
}

// bindDial implements dialBinder.
func (n NegotiateAuth) bindDial(a *authState, o offer, all []Challenge) AuthScheme {
	return boundNegotiate{NegotiateAuth: n, a: a, o: o, all: all}
}

func (b boundNegotiate) env() negotiateEnv {
	d := b.a.d
	env := negotiateEnv{getenv: d.env, spn: d.ProxySPN}
	if d.Logf != nil {
		env.logf = d.logf
	}
	return env
}

// Start tries a ticket first (with the proxy URL's password when it has
// one), then each credential source's password, and wraps a failure where
// nothing reached the proxy as errSchemeUnavailable.
func (b boundNegotiate) Start(ctx context.Context, proxy *url.URL, _ string, _ *Credentials) (AuthSession, error) {
	env, host := b.env(), proxy.Hostname()
	if env.logf != nil && (b.pureGo() || !sspiAvailable) {
		env.tracef("Negotiate would use: %s", strings.TrimPrefix(b.config(env, nil).Describe(ctx, host), "Negotiate: "))
	}
	var creds *Credentials
	src := srcNone
	if b.a.proxy.User != nil {
		// The URL's password costs no prompt: offer it from the start.
		c, s, err := b.a.credentials(ctx, b.o, b.all)
		if err != nil {
			return nil, err
		}
		creds, src = c, s
	}
	for {
		s, err := b.newSession(ctx, env, host, creds)
		if err == nil {
			s.creds, s.src = creds, src
			return s, nil
		}
		if !negotiate.FallbackAllowed(err) {
			return nil, err
		}
		if creds != nil && errors.Is(err, negotiate.ErrPreauthFailed) {
			// Never again in this dial, for any scheme.
			b.a.refused = append(b.a.refused, *creds)
			b.a.exhausted[src] = true
			err = fmt.Errorf("%w: %w", ErrProxyCredentialsRejected, err)
			env.tracef("Negotiate: the KDC refused the password of %q from %s", creds.Username, src)
		} else if creds != nil || !passwordMayHelp(err) {
			return nil, schemeUnavailable(err)
		}
		next, nsrc, lerr := b.a.credentials(ctx, b.o, b.all)
		if lerr != nil {
			return nil, lerr
		}
		if next == nil || next.Username == "" || next.Password == "" {
			return nil, schemeUnavailable(err)
		}
		env.tracef("Negotiate: %v; getting a ticket with the password of %q from %s", briefly(err), next.Username, nsrc)
		creds, src = next, nsrc
	}
}

// passwordMayHelp reports whether a failure without a password is one a
// password fixes: no usable ticket cache. A missing KDC or configuration
// stays missing.
func passwordMayHelp(err error) bool {
	for _, e := range []error{negotiate.ErrNoTicket, negotiate.ErrTicketExpired, negotiate.ErrUnsupportedCache, negotiate.ErrBadCache} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// briefly is an error's text without its hint, for a trace line.
func briefly(err error) string {
	var e *negotiate.Error
	if errors.As(err, &e) {
		return strings.TrimPrefix(e.Detail, "negotiate: ")
	}
	return err.Error()
}

// The hooks the 407 loop (auth.go) and the CONNECT exchange (connect.go)
// call. Each is scheme-agnostic: a scheme or session opts in through an
// interface.

// errSchemeUnavailable marks a Start or Answer error meaning that nothing
// was sent to the proxy and nothing can be (no Kerberos ticket): the 407
// loop tries the next offered scheme instead of failing the dial.
var errSchemeUnavailable = errors.New("scheme unavailable")

// errFinalRefusal marks a session's refusal that must end the dial even
// though it matches ErrProxyCredentialsRejected: the proxy saw and refused
// an attempt (a Kerberos ticket) that no other source or scheme should
// follow.
var errFinalRefusal = errors.New("final refusal")

type markedError struct {
	err  error
	mark error
}

func (e *markedError) Error() string        { return e.err.Error() }
func (e *markedError) Unwrap() error        { return e.err }
func (e *markedError) Is(target error) bool { return target == e.mark }

func schemeUnavailable(err error) error { return &markedError{err: err, mark: errSchemeUnavailable} }

func finalRefusal(err error) error {
	return &markedError{err: fmt.Errorf("%w: %w", ErrProxyCredentialsRejected, err), mark: errFinalRefusal}
}

// dialBinder is a scheme that needs the dial itself (the Dialer's
// environment and trace, the credential sources): the 407 loop uses what
// bindDial returns in its place.
type dialBinder interface {
	bindDial(a *authState, o offer, all []Challenge) AuthScheme
}

// bind returns the scheme to start for o.
func (a *authState) bind(o offer, all []Challenge) AuthScheme {
	if b, ok := o.scheme.(dialBinder); ok {
		return b.bindDial(a, o, all)
	}
	return o.scheme
}

// credentialReporter is a session that looked up its credentials itself.
type credentialReporter interface {
	usedCredentials() (*Credentials, credSource)
}

// reportedCredentials returns the credentials a session says it used, or
// creds and src as they were.
func reportedCredentials(sess AuthSession, creds *Credentials, src credSource) (*Credentials, credSource) {
	if r, ok := sess.(credentialReporter); ok {
		return r.usedCredentials()
	}
	return creds, src
}

// sspiTarget is the target name SSPI would be given for the proxy at host.
func sspiTarget(host, spn string) string {
	plan, _ := negotiate.PlanSSPI([]string{"Negotiate"}, host, spn, "", "")
	return plan.TargetName
}

// successVerifier is a session that checks the proxy's 2xx (mutual
// authentication).
type successVerifier interface {
	verifySuccess(h http.Header) error
}

// verifySuccess lets the current session check the proxy's 2xx answer.
func (a *authState) verifySuccess(h http.Header) error {
	if v, ok := a.session.(successVerifier); ok {
		if err := v.verifySuccess(h); err != nil {
			return fmt.Errorf("%s: %w", a.schemeName(), err)
		}
	}
	return nil
}

// close releases what the current session holds (SSPI handles).
func (a *authState) close() {
	if c, ok := a.session.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// unavailableError is the dial's error when no offered scheme could answer
// and some could not even start: it says why each could not.
func unavailableError(errs []error, challenges []Challenge, malformed error) error {
	unusable := ""
	if malformed != nil {
		unusable = "; could not use the rest: " + malformed.Error()
	}
	return fmt.Errorf("%w: %w (%s%s)", ErrProxyAuthRequired, errors.Join(errs...), describeChallenges(challenges), unusable)
}

// DescribeNegotiate says, without asking any KDC or the proxy, which
// service principal and credentials the Negotiate scheme would use at
// proxy: the ticket cache and its principal and expiry, a keytab, a
// password and where it would come from. It is what "wsdial -show-proxy"
// prints. It never shows a password, key or ticket. When AuthSchemes does
// not allow Negotiate it says so.
func (d *Dialer) DescribeNegotiate(ctx context.Context, proxy *url.URL) string {
	var n *NegotiateAuth
	for _, s := range d.schemes() {
		if na, ok := s.(NegotiateAuth); ok {
			n = &na
			break
		}
	}
	if n == nil {
		return "Negotiate: not allowed (AuthSchemes has no NegotiateAuth)"
	}
	env := negotiateEnv{getenv: d.env, spn: d.ProxySPN}
	var desc string
	if !n.pureGo() && sspiAvailable {
		desc = "Negotiate: SSPI with " + map[bool]string{true: "the proxy URL's user", false: "the logon session's credentials"}[proxy.User != nil] +
			", SPN " + sspiTarget(proxy.Hostname(), n.spn(env))
	} else {
		var creds *Credentials
		if proxy.User != nil {
			creds = userinfoCredentials(proxy)
		}
		desc = n.config(env, creds).Describe(ctx, proxy.Hostname())
		if proxy.User != nil {
			desc += " (from the proxy URL)"
		}
	}
	var more []string
	if proxy.User == nil {
		if d.Credentials != nil {
			more = append(more, "Dialer.Credentials")
		}
		if d.UseNetrc {
			more = append(more, "the netrc file")
		}
	}
	if len(more) > 0 {
		desc += "; without a ticket, a password from " + strings.Join(more, ", then ")
	}
	return desc
}
