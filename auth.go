package wsproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/wsproxy/wsproxy/internal/httpauth"
	"github.com/wsproxy/wsproxy/internal/httpauth/negotiate"
)

// Proxy authentication: the public types (challenges, credentials, the
// scheme interfaces and the built-in schemes, whose mechanics live in
// internal/httpauth), and authState, which carries one dial through its
// 407 rounds.

// Challenge is one challenge from a Proxy-Authenticate header (RFC 7235
// section 2.1): a scheme followed by either a token68 or parameters.
type Challenge struct {
	// Scheme is the authentication scheme as the proxy spelled it, such as
	// "Basic" or "Digest". Compare it with strings.EqualFold.
	Scheme string
	// Params holds the auth-params with lower-cased names and unquoted
	// values. Nil when the challenge has none.
	Params map[string]string
	// Token68 is the single token68 form some schemes use (NTLM and
	// Negotiate carry their binary messages in it). Empty when absent.
	Token68 string
}

// Realm returns the challenge's realm parameter, or "".
func (c Challenge) Realm() string { return c.Params["realm"] }

// String formats the challenge for messages: the scheme and its realm. It
// never includes the other parameters (a Digest nonce is noise to a reader).
func (c Challenge) String() string { return httpauth.Challenge(c).String() }

// ParseChallenges parses every challenge in the given Proxy-Authenticate (or
// WWW-Authenticate) header values. A header may hold several challenges and
// a response may hold several headers; quoted strings may contain commas and
// backslash escapes. Parsing is lenient where proxies are sloppy (unquoted
// values, empty list elements). On a syntax error it returns the challenges
// parsed before it together with the error.
func ParseChallenges(values []string) ([]Challenge, error) {
	chs, err := httpauth.ParseChallenges(values)
	return fromMech(chs), err
}

// fromMech and toMech convert challenges at the package boundary.
func fromMech(chs []httpauth.Challenge) []Challenge {
	if chs == nil {
		return nil
	}
	out := make([]Challenge, len(chs))
	for i, ch := range chs {
		out[i] = Challenge(ch)
	}
	return out
}

func toMech(chs []Challenge) []httpauth.Challenge {
	out := make([]httpauth.Challenge, len(chs))
	for i, ch := range chs {
		out[i] = httpauth.Challenge(ch)
	}
	return out
}

// Credentials are a user name and password for a proxy. For NTLM the user
// name may carry a domain, as "DOMAIN\user" or "user@domain".
type Credentials struct {
	Username string
	Password string
}

// String never shows the password.
func (c Credentials) String() string { return c.Username + ":[redacted]" }

// CredentialsRequest describes what a proxy asked for, given to
// Dialer.Credentials.
type CredentialsRequest struct {
	// Proxy is the proxy's URL without user information.
	Proxy *url.URL
	// Scheme is the scheme the Dialer chose, e.g. "Digest", and Realm the
	// realm of that challenge ("" when none, as with NTLM).
	Scheme string
	Realm  string
	// Challenges holds every challenge the proxy offered, in its order.
	Challenges []Challenge
}

// AuthScheme answers one kind of proxy authentication challenge. It is the
// extension point for schemes wsproxy does not implement itself, or for
// replacing one (Negotiate through the system's GSS-API library, say):
// implement it and list it in Dialer.AuthSchemes, usually together with
// DefaultAuthSchemes(); the first scheme of a name wins.
//
// For each 407 the Dialer matches the offered challenges with its schemes
// by Name, orders the matches by Strength (strongest first, the proxy's
// order breaking ties), finds credentials for the first one whose scheme
// needs them, calls Start, and sends what the session's Answer returns.
// Implementations must be safe for concurrent use; sessions are used by one
// dial at a time.
type AuthScheme interface {
	// Name is the scheme token as it appears in challenges, matched
	// case-insensitively, e.g. "Negotiate".
	Name() string
	// Strength orders the schemes a proxy offers: the highest is tried
	// first. A value of 0 or less means the scheme cannot answer this
	// challenge (Digest with an unknown algorithm, say) and it is skipped.
	// Built-in values are the Strength constants.
	Strength(Challenge) int
	// NeedsCredentials reports whether the scheme uses a user name and
	// password (Negotiate with the logged-in user's ticket does not).
	NeedsCredentials() bool
	// Start begins answering challenges for one CONNECT to target
	// ("host:port") through proxy (a URL without user information). creds
	// is nil when NeedsCredentials is false. An error aborts the dial.
	Start(ctx context.Context, proxy *url.URL, target string, creds *Credentials) (AuthSession, error)
}

// AuthSession carries one authentication through its rounds.
type AuthSession interface {
	// Answer returns the Proxy-Authorization header value that answers ch,
	// the first challenge and then each later one of the same scheme. An
	// error wrapping ErrProxyCredentialsRejected says the proxy refused
	// the credentials (the Dialer then tries its next credential source);
	// any other error aborts the dial.
	Answer(ctx context.Context, ch Challenge) (string, error)
	// ConnectionBound reports whether the answer just returned must be
	// sent on the connection that carried the challenge (the second leg
	// of NTLM and of multi-round Negotiate). When it is and the proxy
	// closed that connection, the dial fails with a message saying so.
	ConnectionBound() bool
	// Done reports whether the session has no further round to offer:
	// another 407 then means the credentials were rejected.
	Done() bool
}

// Strength values of the built-in schemes, and the one a Negotiate scheme
// plugged in through Dialer.AuthSchemes should use so that it wins.
const (
	StrengthNegotiate    = 50
	StrengthDigestSHA256 = 40 // Digest with SHA-256 or SHA-512-256, plain or -sess
	StrengthDigestMD5    = 30 // Digest with MD5 or MD5-sess, or no algorithm
	StrengthNTLM         = 20
	StrengthBasic        = 10
)

// BasicAuth is the Basic scheme (RFC 7617). Credentials go base64 encoded,
// readable by anyone on the path to the proxy: prefer an HTTPS proxy or a
// stronger scheme when the proxy offers one. It is sent before a challenge
// only as the cleartext rule on Dialer.Credentials allows.
type BasicAuth struct{}

// Name returns "Basic".
func (BasicAuth) Name() string { return "Basic" }

// Strength returns StrengthBasic.
func (BasicAuth) Strength(Challenge) int { return StrengthBasic }

// NeedsCredentials returns true.
func (BasicAuth) NeedsCredentials() bool { return true }

// Start returns a session with one answer; it fails when creds is nil.
func (BasicAuth) Start(_ context.Context, _ *url.URL, _ string, c *Credentials) (AuthSession, error) {
	if c == nil {
		return nil, errors.New("basic auth needs credentials")
	}
	return mechSession{httpauth.NewBasic(httpauth.Credentials(*c), false)}, nil
}

// answerUnasked implements answersUnasked.
func (BasicAuth) answerUnasked(c Credentials) (AuthSession, string) {
	s := httpauth.NewBasic(httpauth.Credentials(c), true)
	return mechSession{s}, s.Value()
}

// DigestAuth is the Digest scheme (RFC 7616), answering challenges with the
// algorithms MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256 and
// SHA-512-256-sess, with qop "auth" (or "auth-int", whose body hash is that
// of the empty CONNECT body) and in the older form without qop (RFC 2069).
// The digest URI is the CONNECT authority, "host:port". The password never
// leaves the machine, but a captured exchange allows an offline guess: a
// strong password still matters.
//
// Details:
//   - the client nonce (cnonce) is 16 bytes from crypto/rand; the nonce
//     count (nc) counts the requests sent with one nonce;
//   - opaque is echoed; userhash=true sends H(user:realm) instead of the
//     user name; with charset=UTF-8 a non-ASCII user name goes as
//     username* (RFC 8187), and the password is hashed as UTF-8;
//   - a value the answer would have to quote but cannot (a user name,
//     realm, nonce, opaque or target with a control character such as CR
//     or LF) makes Answer fail instead of writing a broken header;
//   - stale=true (the nonce expired, the password was right) is answered
//     once with the new nonce, without asking for credentials again;
//   - after a success the Dialer keeps H(user:realm:password) (HA1, not the
//     password) and the nonce for this proxy and realm, and sends the next
//     nonce count preemptively on later dials, which then cost no 407
//     round trip. When the proxy refuses that nonce, the dial answers its
//     new challenge once with the same key.
//
// Strength is StrengthDigestSHA256 for the SHA-256 and SHA-512-256
// families, StrengthDigestMD5 for MD5, and 0 (cannot answer) for an
// unknown algorithm, a challenge without nonce, a qop list with neither
// auth nor auth-int, or a -sess algorithm without qop.
type DigestAuth struct{}

// Name returns "Digest".
func (DigestAuth) Name() string { return "Digest" }

// Strength ranks ch by its algorithm; see DigestAuth.
func (DigestAuth) Strength(ch Challenge) int {
	switch httpauth.DigestStrength(httpauth.Challenge(ch)) {
	case httpauth.DigestStrong:
		return StrengthDigestSHA256
	case httpauth.DigestWeak:
		return StrengthDigestMD5
	}
	return 0
}

// NeedsCredentials returns true.
func (DigestAuth) NeedsCredentials() bool { return true }

// Start returns a session for one CONNECT to target. It fails when creds
// is nil. The session keeps the password only until its first answer has
// derived the key from it.
func (DigestAuth) Start(_ context.Context, _ *url.URL, target string, creds *Credentials) (AuthSession, error) {
	if creds == nil {
		return nil, errors.New("digest auth needs credentials")
	}
	return mechSession{httpauth.NewDigest(target, httpauth.Credentials(*creds))}, nil
}

// resume implements resumesFromState.
func (DigestAuth) resume(state any, target string, ch *Challenge) (AuthSession, string, bool) {
	s, value, ok := httpauth.ResumeDigest(state, target, (*httpauth.Challenge)(ch))
	if !ok {
		return nil, "", false
	}
	return mechSession{s}, value, true
}

// NTLMAuth is the NTLM scheme (NTLMv2 responses only), with the message
// encoding of github.com/Azure/go-ntlmssp. Its three legs, negotiate →
// challenge → authenticate, must run on one connection: the Dialer reads
// each 407 body fully and sends the next CONNECT on the same socket. A
// proxy that closes the connection after its challenge makes the dial fail
// with a message saying so (NTLM cannot complete across connections).
//
// The user name may carry a domain as "DOMAIN\user" or "user@domain".
// Challenges offering NTLMSSP_NEGOTIATE_LM_KEY or key exchange are answered
// with NTLMv2 responses without negotiating either, as Windows clients do;
// LM and NTLMv1 responses are never sent. A challenge without the UNICODE
// flag gets the names in OEM form (ASCII names only; others fail the dial
// with an error saying so). After a success the Dialer caches the credentials for the
// proxy (NTLM has no realm) so later dials skip the callback, but each dial
// still runs the three legs: NTLM authenticates a connection, not a request.
type NTLMAuth struct{}

// Name returns "NTLM".
func (NTLMAuth) Name() string { return "NTLM" }

// Strength returns StrengthNTLM.
func (NTLMAuth) Strength(Challenge) int { return StrengthNTLM }

// NeedsCredentials returns true.
func (NTLMAuth) NeedsCredentials() bool { return true }

// Start returns a session for one CONNECT. It fails when creds is nil or
// empty (anonymous NTLM is not supported).
func (NTLMAuth) Start(_ context.Context, _ *url.URL, _ string, creds *Credentials) (AuthSession, error) {
	if creds == nil {
		return nil, errors.New("NTLM needs a user name and password")
	}
	s, err := httpauth.NewNTLM(httpauth.Credentials(*creds))
	if err != nil {
		return nil, err
	}
	return mechSession{s}, nil
}

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
	s, err := httpauth.NegotiateOptions(n).Start(ctx, httpauth.NegotiateEnv{}, proxy.Hostname(), (*httpauth.Credentials)(creds))
	if err != nil {
		return nil, err
	}
	return mechSession{s}, nil
}

// mechSession adapts a session of internal/httpauth to AuthSession.
type mechSession struct {
	m interface {
		Answer(httpauth.Challenge) (string, error)
		ConnectionBound() bool
		Done() bool
	}
}

func (s mechSession) Answer(_ context.Context, ch Challenge) (string, error) {
	return s.m.Answer(httpauth.Challenge(ch))
}
func (s mechSession) ConnectionBound() bool { return s.m.ConnectionBound() }
func (s mechSession) Done() bool            { return s.m.Done() }

// verifySuccess implements successVerifier for mechanisms that check the
// proxy's 2xx (Negotiate's mutual authentication).
func (s mechSession) verifySuccess(h http.Header) error {
	if v, ok := s.m.(interface{ VerifySuccess([]string) error }); ok {
		return v.VerifySuccess(h.Values("Proxy-Authenticate"))
	}
	return nil
}

// close releases what the mechanism holds (SSPI handles), if anything.
func (s mechSession) close() {
	if c, ok := s.m.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// state implements keepsState for mechanisms that keep state instead of
// the password (Digest).
func (s mechSession) state() (any, string, bool) {
	k, ok := s.m.(interface{ State() (any, string) })
	if !ok {
		return nil, "", false
	}
	st, user := k.State()
	return st, user, true
}

// Optional capabilities of schemes and sessions, checked where they are
// used (as net/http checks optional interfaces), so the 407 loop never
// names a concrete scheme. Their methods are unexported: only built-in
// schemes have them.
type (
	// answersUnasked: a scheme that can answer before any challenge,
	// given credentials (Basic).
	answersUnasked interface {
		answerUnasked(c Credentials) (AuthSession, string)
	}
	// resumesFromState: a scheme that answers from the state a success
	// left instead of the password (Digest): before any challenge when ch
	// is nil, or a new challenge with the kept key.
	resumesFromState interface {
		resume(state any, target string, ch *Challenge) (AuthSession, string, bool)
	}
	// keepsState: a session whose success leaves a state to resume from,
	// and the user it is for.
	keepsState interface {
		state() (state any, user string, ok bool)
	}
)

// DefaultAuthSchemes returns the schemes a Dialer uses when AuthSchemes is
// nil: Negotiate (Kerberos single sign-on, see NegotiateAuth), Digest, NTLM
// and Basic.
func DefaultAuthSchemes() []AuthScheme {
	return []AuthScheme{NegotiateAuth{}, DigestAuth{}, NTLMAuth{}, BasicAuth{}}
}

// offer is a challenge matched with the scheme that can answer it.
type offer struct {
	scheme    AuthScheme
	challenge Challenge
	strength  int
}

// chooseOffers matches challenges with known schemes, strongest first. The
// proxy's order breaks ties. Challenges a scheme cannot answer (strength 0
// or less) are left out.
func chooseOffers(schemes []AuthScheme, chs []Challenge) []offer {
	var out []offer
	for _, ch := range chs {
		for _, s := range schemes {
			if strings.EqualFold(s.Name(), ch.Scheme) {
				if st := s.Strength(ch); st > 0 {
					out = append(out, offer{scheme: s, challenge: ch, strength: st})
				}
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].strength > out[j].strength })
	return out
}

// unusableSuffix says, for an error message, what could not be parsed in
// the proxy's challenges ("" when all of it could).
func unusableSuffix(malformed error) string {
	if malformed == nil {
		return ""
	}
	return "; could not use the rest: " + malformed.Error()
}

// describeChallenges lists offered schemes for error messages.
func describeChallenges(chs []Challenge) string { return httpauth.Describe(toMech(chs)) }

func schemeNames(ss []AuthScheme) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name()
	}
	return strings.Join(names, ", ")
}

// redactHeaderValue hides credentials in a header value for traces.
func redactHeaderValue(name, value string) string {
	switch http.CanonicalHeaderKey(name) {
	case "Proxy-Authorization", "Authorization":
		if scheme, _, ok := strings.Cut(value, " "); ok {
			return scheme + " [redacted]"
		}
		return "[redacted]"
	}
	return value
}

// authStoreInit guards the lazy creation of each Dialer's store.
var authStoreInit sync.Mutex

// authStore returns the Dialer's store of what worked at each proxy.
func (d *Dialer) authStore() *httpauth.Store {
	authStoreInit.Lock()
	defer authStoreInit.Unlock()
	if d.auth == nil {
		d.auth = &httpauth.Store{}
	}
	return d.auth
}

// ForgetCredentials empties the Dialer's cache of proxy credentials that
// worked (and of Digest keys and nonces), so the next dial to each proxy
// starts with a challenge and asks the credential sources again. Call it
// when the user logs out or a password changes.
func (d *Dialer) ForgetCredentials() { d.authStore().Clear() }

// authAttempt is the scheme and credentials answering the proxy now. It is
// replaced whole, never field by field.
type authAttempt struct {
	scheme      AuthScheme
	session     AuthSession
	realm       string
	value       string // Proxy-Authorization for the next request
	creds       *Credentials
	src         httpauth.Source
	speculative bool // value was sent before any challenge asked for it
}

// authState carries the authentication of one dial through its 407 rounds.
// Credentials come from sources in the order documented on
// Dialer.Credentials (httpauth.Sources keeps that order and what the
// proxy refused); what worked goes to the Dialer's store for later dials.
type authState struct {
	d      *Dialer
	proxy  *url.URL // with userinfo, as configured
	target string
	key    string // the proxy's key in the store, set by header

	started bool
	cur     authAttempt
	sources *httpauth.Sources
}

// newAuthState prepares the authentication of one CONNECT to target
// through proxy.
func (d *Dialer) newAuthState(proxy *url.URL, target string) *authState {
	a := &authState{d: d, proxy: proxy, target: target, key: httpauth.ProxyKey(proxy)}
	a.sources = &httpauth.Sources{Logf: d.logf}
	if proxy.User != nil {
		p, _ := proxy.User.Password()
		a.sources.URL = &httpauth.Credentials{Username: proxy.User.Username(), Password: p}
	}
	return a
}

// header returns the Proxy-Authorization value for the next CONNECT. On the
// first request it is a preemptive answer, as the cleartext rule on
// Dialer.Credentials allows: the state a Digest success left, Basic
// credentials that worked at this proxy before, or the proxy URL's
// credentials when AuthSchemes is Basic alone.
func (a *authState) header() string {
	if !a.started {
		a.started = true
		if a.d.ProxyConnectHeader.Get("Proxy-Authorization") == "" {
			a.preempt()
		}
	}
	return a.cur.value
}

func (a *authState) allowed(name string) AuthScheme {
	for _, s := range a.d.schemes() {
		if strings.EqualFold(s.Name(), name) {
			return s
		}
	}
	return nil
}

// preempt prepares the first request's credentials, if any.
func (a *authState) preempt() {
	if e := a.d.authStore().Latest(a.key); e != nil {
		scheme := a.allowed(e.Scheme)
		sameUser := a.proxy.User == nil || a.proxy.User.Username() == e.Username
		if scheme != nil && sameUser {
			if r, ok := scheme.(resumesFromState); ok && e.State != nil {
				if s, value, ok := r.resume(e.State, a.target, nil); ok {
					a.cur = authAttempt{scheme: scheme, session: s, realm: e.Realm, value: value, src: httpauth.SourceStore, speculative: true}
					a.d.logf("auth: sending %s preemptively (realm %q worked at this proxy before, with the key kept from then)", scheme.Name(), e.Realm)
					return
				}
			}
			if u, ok := scheme.(answersUnasked); ok && e.Creds != nil {
				c := Credentials(*e.Creds)
				s, value := u.answerUnasked(c)
				a.cur = authAttempt{scheme: scheme, session: s, realm: e.Realm, value: value, creds: &c, src: httpauth.SourceStore, speculative: true}
				a.d.logf("auth: sending %s preemptively (realm %q worked at this proxy before)", scheme.Name(), e.Realm)
				return
			}
		}
		if _, unasked := scheme.(answersUnasked); !unasked {
			// The proxy is known to use a scheme that waits for its
			// challenge: send nothing before it asks.
			return
		}
	}
	if u := a.unaskedOnly(); u != nil && a.sources.URL != nil {
		c := Credentials(*a.sources.URL)
		s, value := u.answerUnasked(c)
		a.cur = authAttempt{scheme: a.d.AuthSchemes[0], session: s, value: value, creds: &c, src: httpauth.SourceURL, speculative: true}
		a.d.logf("auth: sending %s credentials from the proxy URL preemptively (AuthSchemes allows %[1]s alone)", a.cur.scheme.Name())
	}
}

// unaskedOnly returns the only scheme AuthSchemes allows when it can
// answer before a challenge (Basic): only then may the proxy URL's
// password go before the proxy offered it (the cleartext rule on
// Dialer.Credentials).
func (a *authState) unaskedOnly() answersUnasked {
	if len(a.d.AuthSchemes) != 1 {
		return nil
	}
	u, _ := a.d.AuthSchemes[0].(answersUnasked)
	return u
}

// sent reports whether the last request carried credentials.
func (a *authState) sent() bool {
	return a.cur.value != "" || a.d.ProxyConnectHeader.Get("Proxy-Authorization") != ""
}

func (a *authState) schemeName() string {
	if a.cur.scheme == nil {
		return "authentication"
	}
	return a.cur.scheme.Name()
}

// rejected records that the proxy refused the credentials just sent and
// returns the error that says so. Credentials from the store are dropped
// from it; no source is asked again in this dial.
func (a *authState) rejected() error {
	var err error
	if c := a.cur.creds; c != nil {
		err = fmt.Errorf("%w (%s, user %q, from %s)", ErrProxyCredentialsRejected, a.schemeName(), c.Username, a.cur.src)
		a.sources.Refused(a.cur.src, (*httpauth.Credentials)(c))
	} else {
		err = fmt.Errorf("%w (%s)", ErrProxyCredentialsRejected, a.schemeName())
		a.sources.Refused(a.cur.src, nil)
	}
	if a.cur.scheme != nil && a.d.authStore().Drop(a.key, a.cur.realm, a.schemeName()) {
		a.d.logf("auth: dropped the cached %s credentials for realm %q: the proxy refused them", a.schemeName(), a.cur.realm)
	}
	return err
}

// succeeded is called when the proxy accepted the CONNECT: what worked is
// stored for later dials to this proxy, the scheme's own state (Digest's
// key) when it keeps one, else the credentials.
func (a *authState) succeeded() {
	if a.cur.session == nil || a.cur.scheme == nil {
		return
	}
	e := &httpauth.Entry{Scheme: a.cur.scheme.Name(), Realm: a.cur.realm}
	if k, ok := a.cur.session.(keepsState); ok {
		if st, user, ok := k.state(); ok {
			e.State, e.Username = st, user
		}
	}
	if e.State == nil && a.cur.creds != nil {
		c := httpauth.Credentials(*a.cur.creds)
		e.Creds, e.Username = &c, c.Username
	}
	a.d.authStore().Put(a.key, e)
}

// next prepares the answer to a 407 carrying challenges. malformed is the
// error from parsing the Proxy-Authenticate headers, if any: when no usable
// challenge is left it is reported, saying what was received and why it
// could not be used. sameConn reports whether the answer must go on the
// connection that got the challenge.
func (a *authState) next(ctx context.Context, challenges []Challenge, malformed error) (sameConn bool, err error) {
	var refusal error
	switch {
	case a.cur.session != nil:
		ch, ok := a.sessionChallenge(challenges)
		if ok && !a.cur.session.Done() {
			value, err := a.cur.session.Answer(ctx, ch)
			if err == nil {
				a.cur.value, a.cur.speculative = value, false
				return a.cur.session.ConnectionBound(), nil
			}
			if !errors.Is(err, ErrProxyCredentialsRejected) || errors.Is(err, errFinalRefusal) {
				return false, fmt.Errorf("%s: %w", a.cur.scheme.Name(), err)
			}
		}
		if a.cur.speculative && a.cur.src == httpauth.SourceURL && !ok {
			// The one allowed scheme went first and the proxy does not
			// offer it: say so instead of calling the credentials refused.
			a.d.logf("auth: the proxy did not take the %s guess; choosing among its challenges", a.cur.scheme.Name())
			a.drop()
			break
		}
		refusal = a.rejected()
		a.drop()
	case a.sent():
		// Proxy-Authorization from ProxyConnectHeader was refused.
		return false, a.rejected()
	}
	if len(challenges) == 0 {
		switch {
		case refusal != nil:
			return false, refusal
		case malformed != nil:
			return false, fmt.Errorf("%w: the proxy's challenge could not be used: %w", ErrProxyAuthRequired, malformed)
		}
		return false, fmt.Errorf("%w: the proxy sent 407 without a Proxy-Authenticate challenge", ErrProxyAuthRequired)
	}
	schemes := a.d.schemes()
	offers := chooseOffers(schemes, challenges)
	if len(offers) == 0 {
		if refusal != nil {
			return false, refusal
		}
		unusable := unusableSuffix(malformed)
		if a.d.AuthSchemes != nil {
			return false, fmt.Errorf("%w: no allowed scheme (allowed: %s; %s%s)", ErrProxyAuthRequired, schemeNames(schemes), describeChallenges(challenges), unusable)
		}
		return false, fmt.Errorf("%w: no supported scheme (%s%s)", ErrProxyAuthRequired, describeChallenges(challenges), unusable)
	}
	var unavailable []error // offers that could not start, and why
	for _, o := range offers {
		if a.resumeFromStore(o) {
			return false, nil
		}
		var creds *Credentials
		src := httpauth.SourceNone
		if o.scheme.NeedsCredentials() {
			if creds, src, err = a.credentials(ctx, o, challenges); err != nil {
				return false, err
			}
			if creds == nil {
				continue
			}
		}
		sess, err := a.bind(o, challenges).Start(ctx, stripUserinfo(a.proxy), a.target, creds)
		value := ""
		if err == nil {
			value, err = sess.Answer(ctx, o.challenge)
		}
		if errors.Is(err, errSchemeUnavailable) { // nothing was sent: try the next offer
			a.d.logf("auth: skipping %s: %v", o.challenge, err)
			unavailable = append(unavailable, fmt.Errorf("%s: %w", o.scheme.Name(), err))
			continue
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", o.scheme.Name(), err)
		}
		creds, src = reportedCredentials(sess, creds, src)
		why := "the strongest usable"
		if len(offers) == 1 {
			why = "the only usable"
		}
		from := ""
		if creds != nil {
			from = " with credentials from " + src.String()
		}
		a.d.logf("auth: answering %s%s (%s; %s; allowed: %s)", o.challenge, from, why, describeChallenges(challenges), schemeNames(schemes))
		a.cur = authAttempt{scheme: o.scheme, session: sess, realm: o.challenge.Realm(), value: value, creds: creds, src: src}
		return sess.ConnectionBound(), nil
	}
	if refusal != nil {
		return false, refusal
	}
	if len(unavailable) > 0 {
		return false, unavailableError(unavailable, challenges, malformed)
	}
	return false, fmt.Errorf("%w: no credentials (%s)", ErrProxyAuthRequired, describeChallenges(challenges))
}

// sessionChallenge finds the challenge that continues the current session:
// the same scheme, and the same realm when the session has one.
func (a *authState) sessionChallenge(chs []Challenge) (Challenge, bool) {
	var first *Challenge
	for i, ch := range chs {
		if !strings.EqualFold(ch.Scheme, a.cur.scheme.Name()) {
			continue
		}
		if a.cur.realm == "" || ch.Realm() == a.cur.realm {
			return ch, true
		}
		if first == nil {
			first = &chs[i]
		}
	}
	if first != nil && a.cur.realm == "" {
		return *first, true
	}
	return Challenge{}, false
}

// resumeFromStore answers o with the state a success at this proxy and
// realm left (Digest's key), when the proxy URL carries no credentials and
// the store has not been refused in this dial.
func (a *authState) resumeFromStore(o offer) bool {
	r, ok := o.scheme.(resumesFromState)
	if !ok || a.proxy.User != nil || a.sources.Exhausted(httpauth.SourceStore) {
		return false
	}
	e := a.d.authStore().Lookup(a.key, o.challenge.Realm(), o.scheme.Name())
	if e == nil || e.State == nil {
		return false
	}
	ch := o.challenge
	s, value, ok := r.resume(e.State, a.target, &ch)
	if !ok {
		return false // another algorithm: the kept key does not fit
	}
	a.d.logf("auth: answering %s with the key cached for this realm", o.challenge)
	a.cur = authAttempt{scheme: o.scheme, session: s, realm: o.challenge.Realm(), value: value, src: httpauth.SourceStore}
	return true
}

// credentials finds credentials for an offer in the order documented on
// Dialer.Credentials, skipping what the proxy refused in this dial.
func (a *authState) credentials(ctx context.Context, o offer, all []Challenge) (*Credentials, httpauth.Source, error) {
	s := a.sources
	s.Stored = func(realm string) *httpauth.Credentials {
		if e := a.d.authStore().Lookup(a.key, realm, ""); e != nil {
			return e.Creds
		}
		return nil
	}
	s.Callback = nil
	if a.d.Credentials != nil {
		s.Callback = func(ctx context.Context, realm string) (*httpauth.Credentials, error) {
			c, err := a.d.Credentials(ctx, &CredentialsRequest{Proxy: stripUserinfo(a.proxy), Scheme: o.scheme.Name(), Realm: realm, Challenges: all})
			return (*httpauth.Credentials)(c), err
		}
	}
	s.Netrc = nil
	if a.d.UseNetrc {
		s.Netrc = func() (*httpauth.Credentials, error) {
			return httpauth.NetrcCredentials(httpauth.NetrcPath(a.d.NetrcFile, a.d.env), a.proxy.Hostname())
		}
	}
	c, src, err := s.Next(ctx, o.challenge.Realm())
	return (*Credentials)(c), src, err
}

func stripUserinfo(u *url.URL) *url.URL {
	c := *u
	c.User = nil
	return &c
}

// Negotiate within a dial: the environment, trace and credential sources
// the Dialer lends the scheme, and the hooks the 407 loop and the CONNECT
// exchange call. Each hook is scheme-agnostic: a scheme or session opts in
// through an interface.

// negotiateSession is a Negotiate exchange with the password, if any,
// that got its ticket (for the store and the trace).
type negotiateSession struct {
	mechSession
	creds *Credentials
	src   httpauth.Source
}

// usedCredentials implements credentialReporter.
func (s negotiateSession) usedCredentials() (*Credentials, httpauth.Source) { return s.creds, s.src }

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

// Start logs in as a browser would (see httpauth.NegotiateOptions.Login):
// a ticket first (with the proxy URL's password when it has one), then
// each credential source's password; a failure where nothing reached the
// proxy matches errSchemeUnavailable.
func (b boundNegotiate) Start(ctx context.Context, proxy *url.URL, _ string, _ *Credentials) (AuthSession, error) {
	d := b.a.d
	env := httpauth.NegotiateEnv{Getenv: d.env, SPN: d.ProxySPN}
	if d.Logf != nil {
		env.Logf = d.logf
	}
	next := func(ctx context.Context) (*httpauth.Credentials, httpauth.Source, error) {
		c, src, err := b.a.credentials(ctx, b.o, b.all)
		return (*httpauth.Credentials)(c), src, err
	}
	var first *httpauth.Credentials
	src := httpauth.SourceNone
	if b.a.proxy.User != nil {
		// The URL's password costs no prompt: offer it from the start.
		var err error
		if first, src, err = next(ctx); err != nil {
			return nil, err
		}
	}
	s, creds, src, err := httpauth.NegotiateOptions(b.NegotiateAuth).Login(ctx, env, proxy.Hostname(), first, src, next, b.a.sources.Refused)
	if err != nil {
		return nil, err
	}
	return negotiateSession{mechSession: mechSession{s}, creds: (*Credentials)(creds), src: src}, nil
}

// The hooks the 407 loop (auth.go) and the CONNECT exchange (connect.go)
// call. Each is scheme-agnostic: a scheme or session opts in through an
// interface.

// errSchemeUnavailable marks a Start or Answer error meaning that nothing
// was sent to the proxy and nothing can be (no Kerberos ticket): the 407
// loop tries the next offered scheme instead of failing the dial.
// errFinalRefusal marks a refusal that ends the dial even though it
// matches ErrProxyCredentialsRejected: the proxy saw and refused an attempt
// (a Kerberos ticket) that no other source or scheme should follow.
var (
	errSchemeUnavailable = httpauth.ErrSchemeUnavailable
	errFinalRefusal      = httpauth.ErrFinalRefusal
)

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
	usedCredentials() (*Credentials, httpauth.Source)
}

// reportedCredentials returns the credentials a session says it used, or
// creds and src as they were.
func reportedCredentials(sess AuthSession, creds *Credentials, src httpauth.Source) (*Credentials, httpauth.Source) {
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
	if v, ok := a.cur.session.(successVerifier); ok {
		if err := v.verifySuccess(h); err != nil {
			return fmt.Errorf("%s: %w", a.schemeName(), err)
		}
	}
	return nil
}

// close releases what the current session holds (SSPI handles).
func (a *authState) close() {
	if c, ok := a.cur.session.(interface{ close() }); ok {
		c.close()
	}
}

// drop ends the current attempt before another scheme or credentials are
// chosen.
func (a *authState) drop() {
	a.close()
	a.cur = authAttempt{}
}

// unavailableError is the dial's error when no offered scheme could answer
// and some could not even start: it says why each could not.
func unavailableError(errs []error, challenges []Challenge, malformed error) error {
	return fmt.Errorf("%w: %w (%s%s)", ErrProxyAuthRequired, errors.Join(errs...), describeChallenges(challenges), unusableSuffix(malformed))
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
	env := httpauth.NegotiateEnv{Getenv: d.env, SPN: d.ProxySPN}
	opts := httpauth.NegotiateOptions(*n)
	var desc string
	if opts.UsesSSPI() {
		desc = "Negotiate: SSPI with " + map[bool]string{true: "the proxy URL's user", false: "the logon session's credentials"}[proxy.User != nil] +
			", SPN " + sspiTarget(proxy.Hostname(), opts.SPNFor(env))
	} else {
		var creds *Credentials
		if proxy.User != nil {
			p, _ := proxy.User.Password()
			creds = &Credentials{Username: proxy.User.Username(), Password: p}
		}
		desc = opts.Config(env, (*httpauth.Credentials)(creds)).Describe(ctx, proxy.Hostname())
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
