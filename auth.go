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
		return "", "", fmt.Errorf("expected an auth-param name at offset %d", p.i)
	}
	p.skipOWS()
	if p.eof() || p.s[p.i] != '=' {
		return "", "", fmt.Errorf("expected '=' after %q", name)
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

// Credentials are a user name and password for a proxy.
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
	// Scheme is the scheme the Dialer chose, e.g. "Basic", and Realm the
	// realm of that challenge ("" when none).
	Scheme string
	Realm  string
	// Challenges holds every challenge the proxy offered, in its order.
	Challenges []Challenge
}

// AuthScheme answers one kind of proxy authentication challenge. Basic is
// built in; register others (for example a Negotiate scheme built on SSPI or
// gokrb5) through Dialer.AuthSchemes.
type AuthScheme interface {
	// Name is the scheme token as it appears in challenges, matched
	// case-insensitively.
	Name() string
	// Strength orders the schemes a proxy offers: the highest is tried
	// first. Built-in values: Basic 10.
	Strength(Challenge) int
	// NeedsCredentials reports whether the scheme uses a user name and
	// password (Negotiate with the logged-in user's ticket does not).
	NeedsCredentials() bool
	// Start begins answering challenges for one CONNECT to target
	// ("host:port") through proxy. creds is nil when NeedsCredentials is
	// false.
	Start(ctx context.Context, proxy *url.URL, target string, creds *Credentials) (AuthSession, error)
}

// AuthSession carries one authentication through its rounds.
type AuthSession interface {
	// Answer returns the Proxy-Authorization header value that answers ch.
	Answer(ctx context.Context, ch Challenge) (string, error)
	// ConnectionBound reports whether the next round must be sent on the
	// same connection as the challenge (NTLM and Negotiate handshakes).
	ConnectionBound() bool
	// Done reports whether the session has no further round to offer:
	// another 407 then means the credentials were rejected.
	Done() bool
}

// Strength values of the built-in schemes.
const (
	StrengthBasic = 10
)

// BasicAuth is the Basic scheme (RFC 7617). Credentials go base64 encoded,
// readable by anyone on the path to the proxy: prefer an HTTPS proxy or a
// stronger scheme when the proxy offers one.
type BasicAuth struct{}

func (BasicAuth) Name() string           { return "Basic" }
func (BasicAuth) Strength(Challenge) int { return StrengthBasic }
func (BasicAuth) NeedsCredentials() bool { return true }
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
	s.sent = true
	return s.value, nil
}
func (s *basicSession) ConnectionBound() bool { return false }
func (s *basicSession) Done() bool            { return s.sent }

func basicValue(c Credentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}

// defaultSchemes are the schemes a Dialer knows when AuthSchemes is nil.
func defaultSchemes() []AuthScheme { return []AuthScheme{BasicAuth{}} }

// offer is a challenge matched with the scheme that can answer it.
type offer struct {
	scheme    AuthScheme
	challenge Challenge
	strength  int
}

// chooseOffers matches challenges with known schemes, strongest first. The
// proxy's order breaks ties.
func chooseOffers(schemes []AuthScheme, chs []Challenge) []offer {
	var out []offer
	for _, ch := range chs {
		for _, s := range schemes {
			if strings.EqualFold(s.Name(), ch.Scheme) {
				out = append(out, offer{scheme: s, challenge: ch, strength: s.Strength(ch)})
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

// authState carries the authentication of one dial through its 407 rounds.
type authState struct {
	d       *Dialer
	proxy   *url.URL // with userinfo, as configured
	target  string
	scheme  AuthScheme
	session AuthSession
	value   string // Proxy-Authorization for the next request
	creds   *Credentials
	started bool
}

// header returns the Proxy-Authorization value for the next CONNECT. On the
// first request it is the preemptive Basic answer when the proxy URL carries
// credentials and Basic is allowed.
func (a *authState) header() string {
	if !a.started {
		a.started = true
		if a.proxy.User != nil && a.d.ProxyConnectHeader.Get("Proxy-Authorization") == "" {
			for _, s := range a.d.schemes() {
				if strings.EqualFold(s.Name(), "Basic") {
					a.creds = userinfoCredentials(a.proxy)
					a.scheme = s
					a.session = &basicSession{value: basicValue(*a.creds), sent: true}
					a.value = basicValue(*a.creds)
					a.d.logf("auth: sending Basic credentials from the proxy URL preemptively")
					break
				}
			}
		}
	}
	return a.value
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

// rejected builds the error for credentials the proxy refused.
func (a *authState) rejected() error {
	if a.creds != nil {
		return fmt.Errorf("%w (%s, user %q)", ErrProxyCredentialsRejected, a.schemeName(), a.creds.Username)
	}
	return fmt.Errorf("%w (%s)", ErrProxyCredentialsRejected, a.schemeName())
}

// succeeded is called when the proxy accepted the CONNECT.
func (a *authState) succeeded() {}

// next prepares the answer to a 407 carrying challenges. sameConn reports
// whether the answer must go on the connection that got the challenge.
func (a *authState) next(ctx context.Context, challenges []Challenge) (sameConn bool, err error) {
	if a.session != nil && !a.session.Done() {
		for _, ch := range challenges {
			if strings.EqualFold(ch.Scheme, a.scheme.Name()) {
				a.value, err = a.session.Answer(ctx, ch)
				return a.session.ConnectionBound(), err
			}
		}
		return false, a.rejected()
	}
	if a.sent() {
		return false, a.rejected()
	}
	if len(challenges) == 0 {
		return false, fmt.Errorf("%w: the proxy sent 407 without a Proxy-Authenticate challenge", ErrProxyAuthRequired)
	}
	offers := chooseOffers(a.d.schemes(), challenges)
	if len(offers) == 0 {
		return false, fmt.Errorf("%w: no supported scheme (%s)", ErrProxyAuthRequired, describeChallenges(challenges))
	}
	for _, o := range offers {
		var creds *Credentials
		if o.scheme.NeedsCredentials() {
			if creds, err = a.credentials(ctx, o, challenges); err != nil {
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
		a.d.logf("auth: answering %s (strongest usable; %s)", o.challenge, describeChallenges(challenges))
		a.scheme, a.session, a.value, a.creds = o.scheme, sess, value, creds
		return sess.ConnectionBound(), nil
	}
	return false, fmt.Errorf("%w: no credentials (%s)", ErrProxyAuthRequired, describeChallenges(challenges))
}

// credentials finds credentials for an offer: the proxy URL's userinfo,
// then Dialer.Credentials.
func (a *authState) credentials(ctx context.Context, o offer, all []Challenge) (*Credentials, error) {
	if a.proxy.User != nil {
		return userinfoCredentials(a.proxy), nil
	}
	if a.d.Credentials == nil {
		return nil, nil
	}
	c, err := a.d.Credentials(ctx, &CredentialsRequest{
		Proxy:      stripUserinfo(a.proxy),
		Scheme:     o.scheme.Name(),
		Realm:      o.challenge.Realm(),
		Challenges: all,
	})
	if err != nil {
		return nil, fmt.Errorf("credentials callback: %w", err)
	}
	return c, nil
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
