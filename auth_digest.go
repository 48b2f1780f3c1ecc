package wsproxy

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"
)

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
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return 0
	}
	return dc.alg.strength
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
	c := *creds
	return &digestSession{target: target, creds: &c, user: c.Username}, nil
}

// digestAlg is one Digest algorithm.
type digestAlg struct {
	name     string // as the challenge spelled it, "" when absent
	family   string // "MD5", "SHA-256" or "SHA-512-256": the hash of HA1
	hash     func() hash.Hash
	sess     bool
	strength int
}

func parseDigestAlg(name string) (digestAlg, bool) {
	base, sess := name, false
	if n := len(name); n > 5 && strings.EqualFold(name[n-5:], "-sess") {
		base, sess = name[:n-5], true
	}
	a := digestAlg{name: name, sess: sess}
	switch {
	case base == "" && !sess, strings.EqualFold(base, "MD5"):
		a.family, a.hash, a.strength = "MD5", md5.New, StrengthDigestMD5
	case strings.EqualFold(base, "SHA-256"):
		a.family, a.hash, a.strength = "SHA-256", sha256.New, StrengthDigestSHA256
	case strings.EqualFold(base, "SHA-512-256"):
		a.family, a.hash, a.strength = "SHA-512-256", sha512.New512_256, StrengthDigestSHA256
	default:
		return a, false
	}
	return a, true
}

// digestChallenge is a Digest challenge checked for what this client needs.
type digestChallenge struct {
	realm, nonce, opaque string
	alg                  digestAlg
	qop                  string // chosen: "auth", "auth-int", or "" (RFC 2069)
	stale, userhash      bool
	utf8                 bool
}

func parseDigestChallenge(ch Challenge) (digestChallenge, error) {
	p := ch.Params
	dc := digestChallenge{
		realm:    p["realm"],
		nonce:    p["nonce"],
		opaque:   p["opaque"],
		stale:    strings.EqualFold(p["stale"], "true"),
		userhash: strings.EqualFold(p["userhash"], "true"),
		utf8:     strings.EqualFold(p["charset"], "UTF-8"),
	}
	if dc.nonce == "" {
		return dc, errors.New("digest challenge without nonce")
	}
	alg, ok := parseDigestAlg(p["algorithm"])
	if !ok {
		return dc, fmt.Errorf("unsupported digest algorithm %q", p["algorithm"])
	}
	dc.alg = alg
	if qops, present := p["qop"]; present {
		for _, q := range strings.Split(qops, ",") {
			q = strings.TrimSpace(q)
			switch {
			case strings.EqualFold(q, "auth"):
				dc.qop = "auth"
			case strings.EqualFold(q, "auth-int") && dc.qop == "":
				dc.qop = "auth-int"
			}
		}
		if dc.qop == "" {
			return dc, fmt.Errorf("no supported qop in %q", qops)
		}
	} else if alg.sess {
		return dc, errors.New("digest -sess algorithm without qop")
	}
	return dc, nil
}

// digestKey is the password in the only form Digest keeps after the first
// answer: HA1 = H(user:realm:password) for one realm and hash family.
type digestKey struct {
	realm, family, ha1 string
}

// digestSession answers the Digest challenges of one dial.
type digestSession struct {
	target string
	creds  *Credentials // until the first answer derives key from it
	user   string
	key    digestKey
	ch     digestChallenge // the challenge in force
	cnonce string          // for -sess: fixed for the nonce
	sess   string          // for -sess: the session key for nonce and cnonce
	nc     uint32          // the last nonce count sent with ch.nonce

	answers  int
	retryAny bool // preemptive: any new challenge gets one answer
	retried  bool
}

func (s *digestSession) ConnectionBound() bool { return false }

// Done is true once the one retry (stale nonce, or a preemptive answer the
// proxy refused) has been spent.
func (s *digestSession) Done() bool { return s.retried }

func (s *digestSession) Answer(_ context.Context, ch Challenge) (string, error) {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return "", err
	}
	// Found by FuzzDigestRoundTrip: a control character (CR and LF above
	// all) in a value the answer quotes went into the header as it was.
	if name := s.unquotable(dc); name != "" {
		return "", fmt.Errorf("the %s holds a control character, which a Digest answer cannot carry", name)
	}
	if s.answers > 0 {
		if s.retried || !dc.stale && !s.retryAny {
			return "", fmt.Errorf("%w (a new Digest challenge without stale=true)", ErrProxyCredentialsRejected)
		}
		s.retried = true
	}
	if err := s.adopt(dc); err != nil {
		return "", err
	}
	s.answers++
	return s.answer("CONNECT", s.target, newCnonce()), nil
}

// unquotable names the first value that the answer to dc would write in a
// quoted-string but cannot: a quoted-string has no room for control
// characters other than HTAB. It returns "" when there is none. A user
// name sent hashed (userhash) or as username* needs no quoting.
func (s *digestSession) unquotable(dc digestChallenge) string {
	user := s.user
	if dc.userhash || dc.utf8 && !isPrintableASCII(user) {
		user = ""
	}
	for _, v := range [...]struct{ name, value string }{
		{"user name", user}, {"realm", dc.realm}, {"nonce", dc.nonce}, {"opaque", dc.opaque}, {"target", s.target},
	} {
		for i := 0; i < len(v.value); i++ {
			if c := v.value[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return v.name
			}
		}
	}
	return ""
}

// adopt makes dc the challenge in force, deriving the key from the
// password on first use and then forgetting the password.
func (s *digestSession) adopt(dc digestChallenge) error {
	if s.creds != nil {
		s.key = digestKey{
			realm:  dc.realm,
			family: dc.alg.family,
			ha1:    digestHash(dc.alg.hash, s.creds.Username+":"+dc.realm+":"+s.creds.Password),
		}
		s.creds = nil
	} else if s.key.realm != dc.realm || s.key.family != dc.alg.family {
		return fmt.Errorf("%w (the proxy changed the Digest realm or algorithm; the kept key does not fit)", ErrProxyCredentialsRejected)
	}
	s.ch, s.nc, s.cnonce, s.sess = dc, 0, "", ""
	return nil
}

// preemptive answers the nonce in force, before the proxy asks; a refusal
// is then answered once more with the proxy's new nonce.
func (s *digestSession) preemptive() string {
	s.answers++
	s.retryAny = true
	return s.answer("CONNECT", s.target, newCnonce())
}

// answer builds the Proxy-Authorization value for the next nonce count.
func (s *digestSession) answer(method, uri, cnonce string) string {
	s.nc++
	dc := &s.ch
	h := dc.alg.hash
	ha1 := s.key.ha1
	if dc.alg.sess {
		if s.cnonce == "" {
			s.cnonce = cnonce
			s.sess = digestHash(h, ha1+":"+dc.nonce+":"+s.cnonce)
		}
		cnonce, ha1 = s.cnonce, s.sess
	}
	a2 := method + ":" + uri
	if dc.qop == "auth-int" {
		a2 += ":" + digestHash(h, "") // a CONNECT has no body
	}
	ha2 := digestHash(h, a2)
	nc := fmt.Sprintf("%08x", s.nc)
	var response string
	if dc.qop == "" {
		response = digestHash(h, ha1+":"+dc.nonce+":"+ha2)
	} else {
		response = digestHash(h, ha1+":"+dc.nonce+":"+nc+":"+cnonce+":"+dc.qop+":"+ha2)
	}

	var b strings.Builder
	b.WriteString("Digest ")
	switch {
	case dc.userhash:
		fmt.Fprintf(&b, "username=%s", quoteParam(digestHash(h, s.user+":"+dc.realm)))
	case dc.utf8 && !isPrintableASCII(s.user):
		fmt.Fprintf(&b, "username*=UTF-8''%s", encodeExtValue(s.user))
	default:
		fmt.Fprintf(&b, "username=%s", quoteParam(s.user))
	}
	fmt.Fprintf(&b, ", realm=%s, uri=%s", quoteParam(dc.realm), quoteParam(uri))
	if dc.alg.name != "" {
		fmt.Fprintf(&b, ", algorithm=%s", dc.alg.name)
	}
	fmt.Fprintf(&b, ", nonce=%s", quoteParam(dc.nonce))
	if dc.qop != "" {
		fmt.Fprintf(&b, ", nc=%s, cnonce=%s, qop=%s", nc, quoteParam(cnonce), dc.qop)
	}
	fmt.Fprintf(&b, ", response=%s", quoteParam(response))
	if dc.opaque != "" {
		fmt.Fprintf(&b, ", opaque=%s", quoteParam(dc.opaque))
	}
	if dc.userhash {
		b.WriteString(", userhash=true")
	}
	return b.String()
}

// digestReuse is what the Dialer keeps after a Digest success to answer
// later dials preemptively: the key (HA1), never the password.
type digestReuse struct {
	user   string
	key    digestKey
	ch     digestChallenge
	cnonce string
	sess   string
	nc     uint32 // the last nonce count handed out
}

func (s *digestSession) reuse() *digestReuse {
	return &digestReuse{user: s.user, key: s.key, ch: s.ch, cnonce: s.cnonce, sess: s.sess, nc: s.nc}
}

// session continues with the kept nonce; r.nc is the count to send next.
func (r *digestReuse) session(target string) *digestSession {
	return &digestSession{target: target, user: r.user, key: r.key, ch: r.ch, cnonce: r.cnonce, sess: r.sess, nc: r.nc - 1}
}

// restart answers a new challenge with the kept key; it fails when the key
// does not fit the challenge's realm or algorithm.
func (r *digestReuse) restart(target string, ch Challenge) (*digestSession, error) {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return nil, err
	}
	if dc.realm != r.key.realm || dc.alg.family != r.key.family {
		return nil, errors.New("the kept key is for another realm or algorithm")
	}
	return &digestSession{target: target, user: r.user, key: r.key}, nil
}

func digestHash(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

func newCnonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// quoteParam returns s as a quoted-string.
func quoteParam(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// encodeExtValue percent-encodes s for an RFC 8187 ext-value.
func encodeExtValue(s string) string {
	const attrChar = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte(attrChar, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
