package wsproxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

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
func (c Challenge) String() string {
	if r := c.Realm(); r != "" {
		return fmt.Sprintf("%s realm=%q", c.Scheme, r)
	}
	return c.Scheme
}

// ParseChallenges parses every challenge in the given Proxy-Authenticate (or
// WWW-Authenticate) header values. A header may hold several challenges and
// a response may hold several headers; quoted strings may contain commas and
// backslash escapes. Parsing is lenient where proxies are sloppy (unquoted
// values, empty list elements). On a syntax error it returns the challenges
// parsed before it together with the error.
func ParseChallenges(values []string) ([]Challenge, error) {
	var out []Challenge
	for _, v := range values {
		p := challengeParser{s: v}
		chs, err := p.parse()
		out = append(out, chs...)
		if err != nil {
			return out, fmt.Errorf("parse Proxy-Authenticate %q: %w", truncate(v, 200), err)
		}
	}
	return out, nil
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) eof() bool { return p.i >= len(p.s) }

func (p *challengeParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// skipSeparators skips white space and empty list elements.
func (p *challengeParser) skipSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) parse() ([]Challenge, error) {
	var out []Challenge
	for {
		p.skipSeparators()
		if p.eof() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return out, fmt.Errorf("expected an auth-scheme at offset %d", p.i)
		}
		ch := Challenge{Scheme: scheme}
		p.skipOWS()
		if t68, ok := p.token68(); ok {
			ch.Token68 = t68
			out = append(out, ch)
			continue
		}
		for {
			p.skipOWS()
			if p.eof() {
				break
			}
			if p.s[p.i] == ',' {
				// Either the next auth-param or the next challenge.
				save := p.i
				p.skipSeparators()
				if p.eof() {
					break
				}
				if !p.atParam() {
					p.i = save
					break
				}
			}
			name, value, err := p.param()
			if err != nil {
				return out, err
			}
			if ch.Params == nil {
				ch.Params = make(map[string]string)
			}
			name = strings.ToLower(name)
			if _, dup := ch.Params[name]; !dup {
				ch.Params[name] = value
			}
		}
		out = append(out, ch)
	}
}

// token68 consumes a token68 if one stands here, followed by the end of the
// list element.
func (p *challengeParser) token68() (string, bool) {
	start := p.i
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == start {
		return "", false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if k < len(p.s) && p.s[k] != ',' {
		return "", false
	}
	p.i = k
	return p.s[start:j], true
}

// atParam reports whether an auth-param (token BWS "=") starts here.
func (p *challengeParser) atParam() bool {
	j := p.i
	for j < len(p.s) && isTokenChar(p.s[j]) {
		j++
	}
	if j == p.i {
		return false
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j < len(p.s) && p.s[j] == '='
}

func (p *challengeParser) param() (name, value string, err error) {
	name = p.token()
	if name == "" {
		return "", "", fmt.Errorf("at offset %d: expected a token68 or an auth-param (name=value), found %q", p.i, truncate(p.s[p.i:], 20))
	}
	p.skipOWS()
	if p.eof() || p.s[p.i] != '=' {
		return "", "", fmt.Errorf("at offset %d: expected '=' after %q", p.i, name)
	}
	p.i++
	p.skipOWS()
	if !p.eof() && p.s[p.i] == '"' {
		value, err = p.quoted()
		return name, value, err
	}
	// Lenient: an unquoted value runs to the next comma or white space.
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != ' ' && p.s[p.i] != '\t' {
		p.i++
	}
	return name, p.s[start:p.i], nil
}

func (p *challengeParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), nil
		case '\\':
			if p.i+1 < len(p.s) {
				b.WriteByte(p.s[p.i+1])
				p.i += 2
				continue
			}
		}
		b.WriteByte(c)
		p.i++
	}
	return "", errors.New("unterminated quoted-string")
}

func isTokenChar(c byte) bool {
	if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
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
// stronger scheme when the proxy offers one.
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
	return &basicSession{value: basicValue(*c)}, nil
}

type basicSession struct {
	value string
	sent  bool
}

func (s *basicSession) Answer(context.Context, Challenge) (string, error) {
	if s.sent {
		return "", ErrProxyCredentialsRejected
	}
	s.sent = true
	return s.value, nil
}
func (s *basicSession) ConnectionBound() bool { return false }
func (s *basicSession) Done() bool            { return s.sent }

func basicValue(c Credentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}

// DefaultAuthSchemes returns the schemes a Dialer uses when AuthSchemes is
// nil: Negotiate (Kerberos single sign-on, see NegotiateAuth), Digest, NTLM
// and Basic.
func DefaultAuthSchemes() []AuthScheme {
	return []AuthScheme{NegotiateAuth{}, DigestAuth{}, NTLMAuth{}, BasicAuth{}} // Negotiate: first
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
func describeChallenges(chs []Challenge) string {
	if len(chs) == 0 {
		return "no challenge offered"
	}
	parts := make([]string, len(chs))
	for i, ch := range chs {
		parts[i] = ch.String()
	}
	return "offered: " + strings.Join(parts, ", ")
}

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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// credSource says where credentials came from, in the order they are
// consulted.
type credSource int

const (
	srcNone     credSource = iota
	srcURL                 // the proxy URL's userinfo
	srcCache               // the Dialer's cache of credentials that worked
	srcCallback            // Dialer.Credentials
	srcNetrc               // the netrc file (Dialer.UseNetrc)
	numSources
)

func (s credSource) String() string {
	switch s {
	case srcURL:
		return "the proxy URL"
	case srcCache:
		return "the cache of credentials that worked"
	case srcCallback:
		return "Dialer.Credentials"
	case srcNetrc:
		return "the netrc file"
	}
	return "no source"
}

// authState carries the authentication of one dial through its 407 rounds,
// looking for credentials in the order documented on Dialer.Credentials.
type authState struct {
	d      *Dialer
	proxy  *url.URL // with userinfo, as configured
	target string
	key    string // the proxy's key in the Dialer's cache, set by header

	started     bool
	scheme      AuthScheme
	session     AuthSession
	realm       string
	value       string // Proxy-Authorization for the next request
	creds       *Credentials
	src         credSource
	speculative bool // value was sent before any challenge asked for it

	exhausted [numSources]bool
	refused   []Credentials // rejected during this dial, never sent again
}

// header returns the Proxy-Authorization value for the next CONNECT. On the
// first request it is a preemptive answer: the next Digest nonce count (or
// the Basic credentials) that worked at this proxy before, or else Basic
// with the credentials in the proxy URL when AuthSchemes is Basic alone.
// Nothing else goes before a challenge (see Dialer.Credentials).
func (a *authState) header() string {
	if !a.started {
		a.started = true
		a.key = proxyKey(a.proxy)
		if a.d.ProxyConnectHeader.Get("Proxy-Authorization") == "" {
			a.preempt()
		}
	}
	return a.value
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
	if e := a.d.authCache().preemptive(a.key); e != nil {
		scheme := a.allowed(e.scheme)
		sameUser := a.proxy.User == nil || a.proxy.User.Username() == e.username
		switch {
		case scheme == nil || !sameUser:
		case e.digest != nil:
			s := e.digest.session(a.target)
			a.scheme, a.session, a.realm, a.src, a.speculative = scheme, s, e.realm, srcCache, true
			a.value = s.preemptive()
			a.d.logf("auth: sending Digest preemptively (realm %q worked at this proxy before; nonce count %d)", e.realm, s.nc)
			return
		case e.creds != nil && strings.EqualFold(e.scheme, "Basic"):
			c := *e.creds
			a.scheme, a.creds, a.realm, a.src, a.speculative = scheme, &c, e.realm, srcCache, true
			a.session = &basicSession{value: basicValue(c), sent: true}
			a.value = basicValue(c)
			a.d.logf("auth: sending Basic preemptively (realm %q worked at this proxy before)", e.realm)
			return
		}
		if !strings.EqualFold(e.scheme, "Basic") {
			// The proxy is known to use a stronger scheme: do not send
			// the password in clear before it asks.
			return
		}
	}
	if a.proxy.User != nil && a.basicOnly() {
		a.creds = userinfoCredentials(a.proxy)
		a.scheme, a.src, a.speculative = a.d.AuthSchemes[0], srcURL, true
		a.session = &basicSession{value: basicValue(*a.creds), sent: true}
		a.value = basicValue(*a.creds)
		a.d.logf("auth: sending Basic credentials from the proxy URL preemptively (AuthSchemes allows Basic alone)")
	}
}

// basicOnly reports whether the user restricted AuthSchemes to Basic
// alone: only then may the proxy URL's password go as Basic before the
// proxy offered Basic (the cleartext rule on Dialer.Credentials).
func (a *authState) basicOnly() bool {
	return len(a.d.AuthSchemes) == 1 && strings.EqualFold(a.d.AuthSchemes[0].Name(), "Basic")
}

// sent reports whether the last request carried credentials.
func (a *authState) sent() bool {
	return a.value != "" || a.d.ProxyConnectHeader.Get("Proxy-Authorization") != ""
}

func (a *authState) schemeName() string {
	if a.scheme == nil {
		return "authentication"
	}
	return a.scheme.Name()
}

// rejected records that the proxy refused the credentials just sent and
// returns the error that says so. Credentials from the cache are dropped
// from it; no source is asked again in this dial.
func (a *authState) rejected() error {
	var err error
	if a.creds != nil {
		err = fmt.Errorf("%w (%s, user %q, from %s)", ErrProxyCredentialsRejected, a.schemeName(), a.creds.Username, a.src)
		a.refused = append(a.refused, *a.creds)
	} else {
		err = fmt.Errorf("%w (%s)", ErrProxyCredentialsRejected, a.schemeName())
	}
	if a.src != srcNone {
		a.exhausted[a.src] = true
	}
	if a.scheme != nil {
		if a.d.authCache().drop(a.key, a.realm, a.schemeName()) {
			a.d.logf("auth: dropped the cached %s credentials for realm %q: the proxy refused them", a.schemeName(), a.realm)
		}
	}
	return err
}

// succeeded is called when the proxy accepted the CONNECT: the scheme and
// credentials that worked are cached for later dials to this proxy.
func (a *authState) succeeded() {
	if a.session == nil || a.scheme == nil {
		return
	}
	e := &authEntry{scheme: a.scheme.Name(), realm: a.realm}
	if ds, ok := a.session.(*digestSession); ok {
		e.digest = ds.reuse()
		e.username = ds.user
	} else if a.creds != nil {
		c := *a.creds
		e.creds, e.username = &c, c.Username
	}
	a.d.authCache().store(a.key, e)
}

// reset forgets the current session before another scheme or credentials
// are chosen.
func (a *authState) reset() {
	a.close() // Negotiate: SSPI handles
	a.scheme, a.session, a.realm, a.value, a.creds, a.src, a.speculative = nil, nil, "", "", nil, srcNone, false
}

// next prepares the answer to a 407 carrying challenges. malformed is the
// error from parsing the Proxy-Authenticate headers, if any: when no usable
// challenge is left it is reported, saying what was received and why it
// could not be used. sameConn reports whether the answer must go on the
// connection that got the challenge.
func (a *authState) next(ctx context.Context, challenges []Challenge, malformed error) (sameConn bool, err error) {
	var refusal error
	switch {
	case a.session != nil:
		ch, ok := a.sessionChallenge(challenges)
		if ok && !a.session.Done() {
			value, err := a.session.Answer(ctx, ch)
			if err == nil {
				a.value, a.speculative = value, false
				return a.session.ConnectionBound(), nil
			}
			if !errors.Is(err, ErrProxyCredentialsRejected) || errors.Is(err, errFinalRefusal) { // Negotiate: final
				return false, fmt.Errorf("%s: %w", a.scheme.Name(), err)
			}
		}
		if a.speculative && a.src == srcURL && !ok {
			// Basic went first (AuthSchemes is Basic alone) and the proxy
			// does not offer it: say so instead of calling the
			// credentials refused.
			a.d.logf("auth: the proxy did not take the Basic guess; choosing among its challenges")
			a.reset()
			break
		}
		refusal = a.rejected()
		a.reset()
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
	var unavailable []error // Negotiate: offers that could not start, and why
	for _, o := range offers {
		if ok, err := a.startFromCache(o); err != nil || ok {
			return false, err
		}
		var creds *Credentials
		src := srcNone
		if o.scheme.NeedsCredentials() {
			if creds, src, err = a.credentials(ctx, o, challenges); err != nil {
				return false, err
			}
			if creds == nil {
				continue
			}
		}
		// Negotiate: a dialBinder scheme gets the dial (environment, trace, credential sources).
		sess, err := a.bind(o, challenges).Start(ctx, stripUserinfo(a.proxy), a.target, creds)
		value := ""
		if err == nil {
			value, err = sess.Answer(ctx, o.challenge)
		}
		if errors.Is(err, errSchemeUnavailable) { // Negotiate: nothing sent; try the next offer
			a.d.logf("auth: skipping %s: %v", o.challenge, err)
			unavailable = append(unavailable, fmt.Errorf("%s: %w", o.scheme.Name(), err))
			continue
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", o.scheme.Name(), err)
		}
		creds, src = reportedCredentials(sess, creds, src) // Negotiate: it may have found its own
		why := "the strongest usable"
		if len(offers) == 1 {
			why = "the only usable"
		}
		from := ""
		if creds != nil {
			from = " with credentials from " + src.String()
		}
		a.d.logf("auth: answering %s%s (%s; %s; allowed: %s)", o.challenge, from, why, describeChallenges(challenges), schemeNames(schemes))
		a.scheme, a.session, a.value, a.creds, a.src = o.scheme, sess, value, creds, src
		a.realm = o.challenge.Realm()
		return sess.ConnectionBound(), nil
	}
	if refusal != nil {
		return false, refusal
	}
	if len(unavailable) > 0 { // Negotiate: say why it could not start
		return false, unavailableError(unavailable, challenges, malformed)
	}
	return false, fmt.Errorf("%w: no credentials (%s)", ErrProxyAuthRequired, describeChallenges(challenges))
}

// sessionChallenge finds the challenge that continues the current session:
// the same scheme, and the same realm when the session has one.
func (a *authState) sessionChallenge(chs []Challenge) (Challenge, bool) {
	var first *Challenge
	for i, ch := range chs {
		if !strings.EqualFold(ch.Scheme, a.scheme.Name()) {
			continue
		}
		if a.realm == "" || ch.Realm() == a.realm {
			return ch, true
		}
		if first == nil {
			first = &chs[i]
		}
	}
	if first != nil && a.realm == "" {
		return *first, true
	}
	return Challenge{}, false
}

// startFromCache answers a Digest challenge with the key (HA1) cached for
// this proxy and realm, when the proxy URL does not carry credentials.
func (a *authState) startFromCache(o offer) (bool, error) {
	if a.proxy.User != nil || a.exhausted[srcCache] {
		return false, nil
	}
	if _, ok := o.scheme.(DigestAuth); !ok {
		return false, nil
	}
	e := a.d.authCache().lookup(a.key, o.challenge.Realm(), "Digest")
	if e == nil || e.digest == nil {
		return false, nil
	}
	s, err := e.digest.restart(a.target, o.challenge)
	if err != nil {
		return false, nil // another algorithm: the cached key does not fit
	}
	value, err := s.Answer(context.Background(), o.challenge)
	if err != nil {
		return false, nil
	}
	a.d.logf("auth: answering %s with the key cached for this realm", o.challenge)
	a.scheme, a.session, a.value, a.creds, a.src = o.scheme, s, value, nil, srcCache
	a.realm = o.challenge.Realm()
	return true, nil
}

// credentials finds credentials for an offer in the documented order,
// skipping sources already refused in this dial.
func (a *authState) credentials(ctx context.Context, o offer, all []Challenge) (*Credentials, credSource, error) {
	if a.proxy.User != nil {
		// Credentials in the URL are the only ones meant for this proxy.
		if a.exhausted[srcURL] {
			return nil, srcNone, nil
		}
		return userinfoCredentials(a.proxy), srcURL, nil
	}
	realm := o.challenge.Realm()
	if !a.exhausted[srcCache] {
		if e := a.d.authCache().lookup(a.key, realm, ""); e != nil && e.creds != nil && !a.wasRefused(*e.creds) {
			c := *e.creds
			return &c, srcCache, nil
		}
	}
	if a.d.Credentials != nil && !a.exhausted[srcCallback] {
		c, err := a.d.Credentials(ctx, &CredentialsRequest{
			Proxy:      stripUserinfo(a.proxy),
			Scheme:     o.scheme.Name(),
			Realm:      realm,
			Challenges: all,
		})
		if err != nil {
			return nil, srcNone, fmt.Errorf("credentials callback: %w", err)
		}
		if c != nil && !a.wasRefused(*c) {
			return c, srcCallback, nil
		}
	}
	if a.d.UseNetrc && !a.exhausted[srcNetrc] {
		c, err := netrcCredentials(a.d.netrcPath(), a.proxy.Hostname())
		if err != nil {
			a.d.logf("auth: netrc: %v", err)
		} else if c != nil && !a.wasRefused(*c) {
			return c, srcNetrc, nil
		}
	}
	return nil, srcNone, nil
}

func (a *authState) wasRefused(c Credentials) bool {
	for _, r := range a.refused {
		if r == c {
			return true
		}
	}
	return false
}

func userinfoCredentials(u *url.URL) *Credentials {
	p, _ := u.User.Password()
	return &Credentials{Username: u.User.Username(), Password: p}
}

func stripUserinfo(u *url.URL) *url.URL {
	c := *u
	c.User = nil
	return &c
}
