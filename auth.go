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
// extension point for schemes wsproxy does not implement itself, such as
// Negotiate (Kerberos) through SSPI or gokrb5: implement it and list it in
// Dialer.AuthSchemes, usually together with DefaultAuthSchemes().
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
// nil: Digest, NTLM and Basic. Append a Negotiate scheme to it to keep them
// and add Kerberos.
func DefaultAuthSchemes() []AuthScheme {
	return []AuthScheme{DigestAuth{}, NTLMAuth{}, BasicAuth{}}
}

func defaultSchemes() []AuthScheme { return DefaultAuthSchemes() }

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
			if !errors.Is(err, ErrProxyCredentialsRejected) {
				return false, fmt.Errorf("%s: %w", a.cur.scheme.Name(), err)
			}
		}
		if a.cur.speculative && a.cur.src == httpauth.SourceURL && !ok {
			// The one allowed scheme went first and the proxy does not
			// offer it: say so instead of calling the credentials refused.
			a.d.logf("auth: the proxy did not take the %s guess; choosing among its challenges", a.cur.scheme.Name())
			a.cur = authAttempt{}
			break
		}
		refusal = a.rejected()
		a.cur = authAttempt{}
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
		unusable := ""
		if malformed != nil {
			unusable = "; could not use the rest: " + malformed.Error()
		}
		if a.d.AuthSchemes != nil {
			return false, fmt.Errorf("%w: no allowed scheme (allowed: %s; %s%s)", ErrProxyAuthRequired, schemeNames(schemes), describeChallenges(challenges), unusable)
		}
		return false, fmt.Errorf("%w: no supported scheme (%s%s)", ErrProxyAuthRequired, describeChallenges(challenges), unusable)
	}
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
		sess, err := o.scheme.Start(ctx, stripUserinfo(a.proxy), a.target, creds)
		if err != nil {
			return false, fmt.Errorf("%s: %w", o.scheme.Name(), err)
		}
		value, err := sess.Answer(ctx, o.challenge)
		if err != nil {
			return false, fmt.Errorf("%s: %w", o.scheme.Name(), err)
		}
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
