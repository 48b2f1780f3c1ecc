// Package httpauth holds the mechanics of HTTP proxy authentication that
// the root package's 407 loop drives: the RFC 7235 challenge grammar,
// Basic, Digest (RFC 7616, with its nonce-count bookkeeping), NTLM (on
// go-ntlmssp), netrc files, the store of what worked at each proxy, and
// the order of the credential sources. It knows nothing of the Dialer;
// the root package converts its public types at the boundary.
package httpauth

import (
	"errors"
	"fmt"
	"strings"
)

// Challenge is the root package's Challenge (see its documentation for
// the fields); the two convert to each other.
type Challenge struct {
	Scheme  string
	Params  map[string]string // lower-cased names, unquoted values
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
			return out, fmt.Errorf("parse Proxy-Authenticate %q: %w", Truncate(v, 200), err)
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
		return "", "", fmt.Errorf("at offset %d: expected a token68 or an auth-param (name=value), found %q", p.i, Truncate(p.s[p.i:], 20))
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

// Truncate cuts s to n bytes for messages, marking the cut with "...".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Describe lists offered challenges for error messages and traces.
func Describe(chs []Challenge) string {
	if len(chs) == 0 {
		return "no challenge offered"
	}
	parts := make([]string, len(chs))
	for i, ch := range chs {
		parts[i] = ch.String()
	}
	return "offered: " + strings.Join(parts, ", ")
}
