package httpauth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Digest (RFC 7616): the root package's DigestAuth documents the
// behaviour; this file holds the mechanics.

// Digest strengths, by hash family.
const (
	DigestWeak   = 1 // MD5 and MD5-sess, or no algorithm
	DigestStrong = 2 // SHA-256 and SHA-512-256, plain or -sess
)

// DigestStrength rates ch: DigestStrong, DigestWeak, or 0 when this
// client cannot answer it (an unknown algorithm, no nonce, a qop list with
// neither auth nor auth-int, or a -sess algorithm without qop).
func DigestStrength(ch Challenge) int {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return 0
	}
	return dc.alg.strength
}

// NewDigest returns a session answering the Digest challenges of one
// CONNECT to target with c. It keeps the password only until its first
// answer has derived the key from it.
func NewDigest(target string, c Credentials) *DigestSession {
	return &DigestSession{target: target, creds: &c, user: c.Username}
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
		a.family, a.hash, a.strength = "MD5", md5.New, DigestWeak
	case strings.EqualFold(base, "SHA-256"):
		a.family, a.hash, a.strength = "SHA-256", sha256.New, DigestStrong
	case strings.EqualFold(base, "SHA-512-256"):
		a.family, a.hash, a.strength = "SHA-512-256", sha512.New512_256, DigestStrong
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

// DigestSession answers the Digest challenges of one dial.
type DigestSession struct {
	target string
	creds  *Credentials // until the first answer derives key from it
	user   string
	key    digestKey
	ch     digestChallenge // the challenge in force
	cnonce string          // for -sess: fixed for the nonce
	sess   string          // for -sess: the session key for nonce and cnonce
	count  *nonceCount     // the counts sent with ch.nonce, shared by the sessions resumed from one success
	nc     uint32          // the last nonce count this session sent

	answers  int
	retryAny bool // preemptive: any new challenge gets one answer
	retried  bool
}

// ConnectionBound is false: a Digest answer is valid on any connection.
func (s *DigestSession) ConnectionBound() bool { return false }

// Done is true once the one retry (stale nonce, or a preemptive answer the
// proxy refused) has been spent.
func (s *DigestSession) Done() bool { return s.retried }

// Answer answers ch: the first challenge, then once more a stale one (or,
// after a preemptive answer, any new one). An error wrapping ErrRejected
// says the proxy refused the credentials.
func (s *DigestSession) Answer(ch Challenge) (string, error) {
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
			return "", fmt.Errorf("%w (a new Digest challenge without stale=true)", ErrRejected)
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
func (s *DigestSession) unquotable(dc digestChallenge) string {
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
func (s *DigestSession) adopt(dc digestChallenge) error {
	if s.creds != nil {
		s.key = digestKey{
			realm:  dc.realm,
			family: dc.alg.family,
			ha1:    digestHash(dc.alg.hash, s.creds.Username+":"+dc.realm+":"+s.creds.Password),
		}
		s.creds = nil
	} else if s.key.realm != dc.realm || s.key.family != dc.alg.family {
		return fmt.Errorf("%w (the proxy changed the Digest realm or algorithm; the kept key does not fit)", ErrRejected)
	}
	s.ch, s.nc, s.cnonce, s.sess = dc, 0, "", ""
	s.count = &nonceCount{}
	return nil
}

// answer builds the Proxy-Authorization value for the next nonce count.
func (s *DigestSession) answer(method, uri, cnonce string) string {
	s.nc = s.count.next()
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

// nonceCount hands out the nonce counts of one nonce. A session that
// answers a new nonce starts one; the sessions resumed from its success
// share it, so concurrent dials and successes stored out of order never
// send a count twice.
type nonceCount struct {
	mu   sync.Mutex
	last uint32
}

func (c *nonceCount) next() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last++
	return c.last
}

// digestState is what a Digest success leaves for later dials: the key
// (HA1), never the password, and the nonce in force with its counter.
type digestState struct {
	user   string
	key    digestKey
	ch     digestChallenge
	cnonce string
	sess   string
	count  *nonceCount
}

// State returns what a later dial needs to answer without the password
// (see ResumeDigest), and the user name it is for.
func (s *DigestSession) State() (state any, user string) {
	return &digestState{user: s.user, key: s.key, ch: s.ch, cnonce: s.cnonce, sess: s.sess, count: s.count}, s.user
}

// ResumeDigest answers from a state a Digest success left (see State).
// With ch nil it answers the kept nonce before the proxy asks, with the
// next nonce count; a refusal is then answered once more with the proxy's
// new nonce. With a challenge it answers that challenge with the kept key.
// ok is false when state is not a Digest state or the key does not fit the
// challenge's realm or algorithm.
func ResumeDigest(state any, target string, ch *Challenge) (s *DigestSession, value string, ok bool) {
	st, isDigest := state.(*digestState)
	if !isDigest {
		return nil, "", false
	}
	if ch == nil {
		s = &DigestSession{target: target, user: st.user, key: st.key, ch: st.ch, cnonce: st.cnonce, sess: st.sess, count: st.count}
		s.answers++
		s.retryAny = true
		return s, s.answer("CONNECT", s.target, newCnonce()), true
	}
	dc, err := parseDigestChallenge(*ch)
	if err != nil || dc.realm != st.key.realm || dc.alg.family != st.key.family {
		return nil, "", false
	}
	s = &DigestSession{target: target, user: st.user, key: st.key}
	value, err = s.Answer(*ch)
	if err != nil {
		return nil, "", false
	}
	return s, value, true
}

// DigestAnswerForTest answers ch as the first request of a Digest session
// for method and uri with a fixed client nonce, as the RFC examples do.
func DigestAnswerForTest(ch Challenge, user, password, method, uri, cnonce string) (string, error) {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return "", err
	}
	s := &DigestSession{creds: &Credentials{Username: user, Password: password}, user: user}
	if err := s.adopt(dc); err != nil {
		return "", err
	}
	return s.answer(method, uri, cnonce), nil
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
