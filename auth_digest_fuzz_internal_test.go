package wsproxy

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// digestFuzzAlgs are the algorithms FuzzDigestRoundTrip chooses from; ""
// sends no algorithm parameter (MD5, as in RFC 2617).
var digestFuzzAlgs = []string{"MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess", ""}

// FuzzDigestRoundTrip builds a Digest challenge from fuzzed parameters, lets
// the Dialer's authentication answer it for a CONNECT to host:port (and then
// answer twice more preemptively from its cache, as later dials do), and
// checks every answer with digestExpect.verify, a verifier written from
// RFC 7616 that shares no code with internal/httpauth/digest.go. It also checks that the
// nonce count grows on reuse, that client nonces are fresh, that the
// password changes nothing but the response, and that what cannot be
// written in a header (control characters, CR and LF above all) is refused
// with an error instead of producing a broken header.
func FuzzDigestRoundTrip(f *testing.F) {
	// The Digest challenges of the real proxies in testdata/fuzz/captures.
	for _, c := range captures(f) {
		resp, err := http.ReadResponse(bufioReader(c), nil)
		if err != nil {
			continue
		}
		chs, _ := ParseChallenges(resp.Header.Values("Proxy-Authenticate"))
		for _, ch := range chs {
			if !strings.EqualFold(ch.Scheme, "Digest") {
				continue
			}
			alg := slices.IndexFunc(digestFuzzAlgs, func(a string) bool { return strings.EqualFold(a, ch.Params["algorithm"]) })
			_, qop := ch.Params["qop"]
			f.Add("alice", "wonderland", ch.Params["realm"], ch.Params["nonce"], ch.Params["opaque"], "example.com", uint16(443), uint8(alg), qop, false, false)
		}
	}
	// RFC 7616 section 3.9 and RFC 2069.
	f.Add("Mufasa", "Circle of Life", "http-auth@example.org", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", "www.example.org", uint16(443), uint8(0), true, false, false)
	f.Add("Mufasa", "Circle of Life", "http-auth@example.org", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", "www.example.org", uint16(443), uint8(3), true, false, false)
	f.Add("J\u00e4s\u00f8n Doe", "Secret, or not?", "api@example.org", "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", "api.example.org", uint16(443), uint8(4), true, true, true)
	f.Add("J\u00e4s\u00f8n", "pw", "r", "n", "", "::1", uint16(8443), uint8(1), true, false, true)
	f.Add("Mufasa", "CircleOfLife", "testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "5ccc069c403ebaf9f0171e9517f40e41", "h", uint16(80), uint8(6), false, false, false)
	f.Add(`a"b\c`, `"\`, `r"e\alm`, `n"o\nce`, `o"p\aque`, `h"o\st`, uint16(1), uint8(2), true, false, false)
	// Refused: a header cannot carry these, or RFC 7616 has no answer.
	f.Add("eve\r\nX-Injected: 1", "pw", "r", "n", "", "example.com", uint16(443), uint8(0), true, false, false)
	f.Add("eve", "pw", "r\n", "n", "", "example.com", uint16(443), uint8(0), true, false, false)
	f.Add("eve", "pw", "r", "", "", "example.com", uint16(443), uint8(0), true, false, false)
	f.Add("eve", "pw", "r", "n", "", "example.com", uint16(443), uint8(1), false, false, false)
	f.Fuzz(func(t *testing.T, user, password, realm, nonce, opaque, host string, port uint16, alg uint8, qop, userhash, utf8 bool) {
		e := digestExpect{user: user, password: password, realm: realm, nonce: nonce, opaque: opaque,
			uri: net.JoinHostPort(host, strconv.Itoa(int(port))), alg: digestFuzzAlgs[int(alg)%len(digestFuzzAlgs)],
			qop: qop, userhash: userhash, utf8: utf8}
		sess := strings.HasSuffix(e.alg, "-sess")

		// The challenge as a proxy sends it, parsed as the Dialer does.
		ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": realm, "nonce": nonce}}
		if qop {
			ch.Params["qop"] = "auth"
		}
		if e.alg != "" {
			ch.Params["algorithm"] = e.alg
		}
		if opaque != "" {
			ch.Params["opaque"] = opaque
		}
		if userhash {
			ch.Params["userhash"] = "true"
		}
		if utf8 {
			ch.Params["charset"] = "UTF-8"
		}
		header := formatChallenge(ch)
		chs, err := ParseChallenges([]string{header})
		if err != nil || len(chs) != 1 || !maps.Equal(chs[0].Params, ch.Params) {
			t.Fatalf("challenge %q parsed as %+v, %v", header, chs, err)
		}

		// What must be refused: values a quoted-string cannot carry, and
		// challenges RFC 7616 gives no answer to.
		var refuse []string
		if nonce == "" {
			refuse = append(refuse, "no nonce")
		}
		if sess && !qop {
			refuse = append(refuse, "-sess without qop")
		}
		for _, v := range []struct{ name, value string }{{"realm", realm}, {"nonce", nonce}, {"opaque", opaque}, {"uri", e.uri}} {
			if !quotable(v.value) {
				refuse = append(refuse, v.name+" not quotable")
			}
		}
		if !userhash && !utf8 && !quotable(user) {
			refuse = append(refuse, "user name not quotable and no charset=UTF-8 for username*")
		}

		proxy := &url.URL{Scheme: "http", Host: "proxy.test:3128"}
		dialer := func(password string) *Dialer {
			return &Dialer{
				AuthSchemes: []AuthScheme{DigestAuth{}},
				Credentials: func(context.Context, *CredentialsRequest) (*Credentials, error) {
					return &Credentials{Username: user, Password: password}, nil
				},
			}
		}
		// answer runs the first round of a dial: no preemptive value, then
		// the answer to the 407's challenges.
		answer := func(d *Dialer) (*authState, error) {
			a := d.newAuthState(proxy, e.uri)
			if h := a.header(); h != "" {
				t.Fatalf("preemptive answer %q with an empty cache", h)
			}
			_, err := a.next(context.Background(), chs, nil)
			return a, err
		}

		d := dialer(password)
		first, err := answer(d)
		if len(refuse) > 0 {
			if err == nil {
				t.Fatalf("answered %q although %s", first.cur.value, strings.Join(refuse, ", "))
			}
			if first.cur.value != "" {
				t.Fatalf("refused with %v but left the answer %q", err, first.cur.value)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused %q: %v", header, err)
		}
		a1, err := e.verify(first.cur.value, 1, "")
		if err != nil {
			t.Fatalf("first answer %q to %q: %v", first.cur.value, header, err)
		}

		// Later dials answer preemptively with the cached key and nonce:
		// the nonce count grows, the client nonce is fresh (or, for -sess,
		// the one the session key was derived from: servers compute the
		// key from the cnonce in each request).
		first.succeeded()
		prev := a1
		for nc := 2; nc <= 3; nc++ {
			a := d.newAuthState(proxy, e.uri)
			h := a.header()
			ans, err := e.verify(h, nc, a1.params["cnonce"])
			if err != nil {
				t.Fatalf("preemptive answer %q (dial %d) to %q: %v", h, nc, header, err)
			}
			switch {
			case !qop:
				if h != first.cur.value {
					t.Fatalf("without qop the preemptive answer %q differs from the first %q", h, first.cur.value)
				}
			case sess && ans.params["cnonce"] != a1.params["cnonce"]:
				t.Fatalf("-sess: cnonce %q changed from %q under the same nonce", ans.params["cnonce"], a1.params["cnonce"])
			case !sess && ans.params["cnonce"] == prev.params["cnonce"]:
				t.Fatalf("cnonce %q repeated in dial %d", ans.params["cnonce"], nc)
			}
			a.succeeded()
			prev = ans
		}

		// Another password: a fresh client nonce, and a header that differs
		// only in the response (and cnonce): nothing else depends on the
		// password.
		other := "x" + password
		e2 := e
		e2.password = other
		second, err := answer(dialer(other))
		if err != nil {
			t.Fatalf("refused %q with another password: %v", header, err)
		}
		a2, err := e2.verify(second.cur.value, 1, "")
		if err != nil {
			t.Fatalf("answer %q with another password: %v", second.cur.value, err)
		}
		if qop && a2.params["cnonce"] == a1.params["cnonce"] {
			t.Fatalf("two sessions used the same cnonce %q", a1.params["cnonce"])
		}
		s1, s2 := a1.segments(), a2.segments()
		if !slices.Equal(s1, s2) {
			t.Fatalf("the password changes more than the response:\n%q\n%q", first.cur.value, second.cur.value)
		}
		// So the password can show up only by coincidence: inside text
		// that is the same for any password, or overlapping the hex of a
		// hash or of the random cnonce.
		if password != "" {
			for i, seg := range s1 {
				if strings.Contains(seg, password) && !strings.Contains(s2[i], password) {
					t.Fatalf("the password is in the header %q", first.cur.value)
				}
			}
		}
	})
}

// quotable reports whether s can be written in an HTTP quoted-string (RFC
// 9110 section 5.6.4): no control characters but HTAB.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// digestExpect is what the server knows when it checks a Digest answer to
// its challenge for a CONNECT: the user's name and password and the
// parameters it sent.
type digestExpect struct {
	user, password, realm, nonce, opaque string
	uri, alg                             string
	qop, userhash, utf8                  bool
}

// digestAnswer is a parsed Authorization value.
type digestAnswer struct {
	header string
	params map[string]string
	spans  map[string][2]int // each value's place in header
}

// segments returns the header cut around the values of cnonce and response,
// the random and the password-derived parts.
func (a digestAnswer) segments() []string {
	var cuts [][2]int
	for _, k := range []string{"cnonce", "response"} {
		if s, ok := a.spans[k]; ok {
			cuts = append(cuts, s)
		}
	}
	slices.SortFunc(cuts, func(x, y [2]int) int { return x[0] - y[0] })
	var out []string
	at := 0
	for _, c := range cuts {
		out = append(out, a.header[at:c[0]])
		at = c[1]
	}
	return append(out, a.header[at:])
}

// verify checks an answer as RFC 7616 section 3.4 has the server do it, for
// the nonce count nc. cnoncePrime is the cnonce the -sess session key was
// derived from ("" for the answer's own).
func (e digestExpect) verify(h string, nc int, cnoncePrime string) (digestAnswer, error) {
	a, err := parseDigestAnswer(h)
	if err != nil {
		return a, err
	}
	p := a.params
	for k := range p {
		switch k {
		case "username", "username*", "realm", "uri", "algorithm", "nonce", "nc", "cnonce", "qop", "response", "opaque", "userhash":
		default:
			return a, fmt.Errorf("unexpected parameter %q", k)
		}
	}
	base, sess := strings.CutSuffix(e.alg, "-sess")
	var newHash func() hash.Hash
	switch base {
	case "MD5", "":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	case "SHA-512-256":
		newHash = sha512.New512_256
	}
	H := func(s string) string {
		x := newHash()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}

	// Who is asking (section 3.4.4).
	_, hasName := p["username"]
	ext, hasExt := p["username*"]
	if hasName == hasExt {
		return a, errors.New("want exactly one of username and username*")
	}
	switch {
	case e.userhash:
		if p["userhash"] != "true" || !hasName || p["username"] != H(e.user+":"+e.realm) {
			return a, fmt.Errorf("userhash: username %q userhash %q, want H(user:realm)", p["username"], p["userhash"])
		}
	case hasExt:
		if !e.utf8 {
			return a, errors.New("username* without charset=UTF-8 in the challenge")
		}
		name, err := decodeExtValue(ext)
		if err != nil || name != e.user {
			return a, fmt.Errorf("username* %q decodes to %q (%v), want %q", ext, name, err, e.user)
		}
	default:
		if p["username"] != e.user {
			return a, fmt.Errorf("username %q, want %q", p["username"], e.user)
		}
	}
	if v, ok := p["userhash"]; ok && !e.userhash && v != "false" {
		return a, fmt.Errorf("userhash=%s not asked for", v)
	}

	// The challenge's parameters come back, the uri is the authority.
	if p["realm"] != e.realm || p["nonce"] != e.nonce || p["uri"] != e.uri {
		return a, fmt.Errorf("realm %q nonce %q uri %q, want %q %q %q", p["realm"], p["nonce"], p["uri"], e.realm, e.nonce, e.uri)
	}
	if alg, ok := p["algorithm"]; ok != (e.alg != "") || alg != e.alg {
		return a, fmt.Errorf("algorithm %q, want %q", alg, e.alg)
	}
	if op, ok := p["opaque"]; ok != (e.opaque != "") || op != e.opaque {
		return a, fmt.Errorf("opaque %q, want %q", op, e.opaque)
	}

	cnonce := p["cnonce"]
	if e.qop {
		if p["qop"] != "auth" || p["nc"] != fmt.Sprintf("%08x", nc) || len(cnonce) < 16 {
			return a, fmt.Errorf("qop %q nc %q cnonce %q, want auth, %08x and a cnonce", p["qop"], p["nc"], cnonce, nc)
		}
	} else {
		for _, k := range []string{"qop", "nc", "cnonce"} {
			if _, ok := p[k]; ok {
				return a, fmt.Errorf("%s without qop in the challenge", k)
			}
		}
	}

	// Sections 3.4.1 to 3.4.3: the response.
	ha1 := H(e.user + ":" + e.realm + ":" + e.password)
	if sess {
		if cnoncePrime == "" {
			cnoncePrime = cnonce
		}
		ha1 = H(ha1 + ":" + e.nonce + ":" + cnoncePrime)
	}
	ha2 := H("CONNECT:" + e.uri)
	want := H(ha1 + ":" + e.nonce + ":" + ha2)
	if e.qop {
		want = H(ha1 + ":" + e.nonce + ":" + p["nc"] + ":" + cnonce + ":auth:" + ha2)
	}
	if p["response"] != want {
		return a, fmt.Errorf("response %q, want %q", p["response"], want)
	}
	return a, nil
}

// parseDigestAnswer parses "Digest" and a list of auth-params strictly by
// RFC 9110 sections 5.6 and 11.4: token or quoted-string values, no empty
// elements, no repeated names, no control characters but HTAB.
func parseDigestAnswer(h string) (digestAnswer, error) {
	a := digestAnswer{header: h, params: map[string]string{}, spans: map[string][2]int{}}
	i := len("Digest ")
	if !strings.HasPrefix(h, "Digest ") {
		return a, errors.New("not a Digest answer")
	}
	ows := func() {
		for i < len(h) && (h[i] == ' ' || h[i] == '\t') {
			i++
		}
	}
	for {
		start := i
		for i < len(h) && rfcTokenChar(h[i]) {
			i++
		}
		if i == start || i == len(h) || h[i] != '=' {
			return a, fmt.Errorf("want name= at offset %d", start)
		}
		name := strings.ToLower(h[start:i])
		i++
		var value string
		var span [2]int
		if i < len(h) && h[i] == '"' {
			i++
			span[0] = i
			var b strings.Builder
			for {
				if i == len(h) {
					return a, fmt.Errorf("unterminated quoted-string for %s", name)
				}
				c := h[i]
				if c == '"' {
					break
				}
				if c == '\\' {
					if i+1 == len(h) || !(h[i+1] == '\t' || h[i+1] >= 0x20 && h[i+1] != 0x7f) {
						return a, fmt.Errorf("bad quoted-pair in %s at offset %d", name, i)
					}
					i++
					c = h[i]
				} else if c != '\t' && (c < 0x20 || c == 0x7f) {
					return a, fmt.Errorf("control byte %#x in %s at offset %d", c, name, i)
				}
				b.WriteByte(c)
				i++
			}
			span[1] = i
			i++
			value = b.String()
		} else {
			span[0] = i
			for i < len(h) && rfcTokenChar(h[i]) {
				i++
			}
			span[1] = i
			if span[0] == span[1] {
				return a, fmt.Errorf("empty value for %s", name)
			}
			value = h[span[0]:span[1]]
		}
		if _, dup := a.params[name]; dup {
			return a, fmt.Errorf("%s repeated", name)
		}
		a.params[name], a.spans[name] = value, span
		ows()
		if i == len(h) {
			return a, nil
		}
		if h[i] != ',' {
			return a, fmt.Errorf("want a comma at offset %d", i)
		}
		i++
		ows()
	}
}

// decodeExtValue decodes an RFC 8187 ext-value in UTF-8.
func decodeExtValue(v string) (string, error) {
	charset, rest, ok := strings.Cut(v, "'")
	if !ok || !strings.EqualFold(charset, "UTF-8") {
		return "", fmt.Errorf("charset of %q is not UTF-8", v)
	}
	_, rest, ok = strings.Cut(rest, "'") // the language
	if !ok {
		return "", fmt.Errorf("no language part in %q", v)
	}
	var b []byte
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '%':
			if i+2 >= len(rest) {
				return "", fmt.Errorf("truncated escape in %q", v)
			}
			x, err := hex.DecodeString(rest[i+1 : i+3])
			if err != nil {
				return "", err
			}
			b = append(b, x[0])
			i += 2
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0:
			b = append(b, c)
		default:
			return "", fmt.Errorf("byte %#x not an attr-char in %q", c, v)
		}
	}
	return string(b), nil
}

// rfcTokenChar reports whether c is a tchar of RFC 9110 section 5.6.2,
// written here so the verifier shares nothing with the parser.
func rfcTokenChar(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
