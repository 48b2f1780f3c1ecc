package proxytest

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Digest is an Authenticator requiring Digest credentials (RFC 7616),
// verified independently of the client code under test. It issues one
// challenge per algorithm, remembers its nonces, refuses a nonce count that
// does not grow, and can declare nonces stale. Set it as Config.Auth.
type Digest struct {
	Username, Password, Realm string
	// Algorithms offered, one challenge each in this order; "" sends no
	// algorithm parameter (MD5). Nil means {""}.
	Algorithms []string
	// QOP is the qop parameter offered: "" means "auth"; "none" sends no
	// qop (RFC 2069).
	QOP string
	// Opaque, when set, is sent and must come back.
	Opaque string
	// UserHash asks for the hashed user name (userhash=true).
	UserHash bool
	// Charset sends charset=UTF-8.
	Charset bool
	// MaxNonceUses makes a nonce stale after that many accepted requests;
	// 0 means never.
	MaxNonceUses int
	// Extra challenges are offered after the Digest ones (e.g. Basic, which
	// this Authenticator never accepts).
	Extra []string

	mu       sync.Mutex
	nonces   map[string]*digestNonce
	accepted int
	stale    int
	refused  int
	seen     []string
}

type digestNonce struct {
	alg    string
	lastNC uint64
	uses   int
	stale  bool
}

// ExpireNonces marks every nonce issued so far stale: the next request with
// one is answered 407 with stale=true.
func (d *Digest) ExpireNonces() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nonces {
		n.stale = true
	}
}

// Counts returns how many requests were accepted, answered stale=true, and
// refused (including those without credentials).
func (d *Digest) Counts() (accepted, stale, refused int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted, d.stale, d.refused
}

// Seen returns the Proxy-Authorization values received, in order.
func (d *Digest) Seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.seen...)
}

// Authenticate implements Authenticator.
func (d *Digest) Authenticate(req *http.Request, _ *ConnState) (bool, int, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := req.Header.Get("Proxy-Authorization")
	d.seen = append(d.seen, h)
	ok, stale := d.check(req, h)
	switch {
	case ok:
		d.accepted++
		return true, 0, nil
	case stale:
		d.stale++
	default:
		d.refused++
	}
	return false, http.StatusProxyAuthRequired, d.challenges(stale)
}

func (d *Digest) challenges(stale bool) []string {
	if d.nonces == nil {
		d.nonces = make(map[string]*digestNonce)
	}
	algs := d.Algorithms
	if algs == nil {
		algs = []string{""}
	}
	var out []string
	for _, alg := range algs {
		var b [18]byte
		_, _ = rand.Read(b[:])
		nonce := base64.StdEncoding.EncodeToString(b[:])
		d.nonces[nonce] = &digestNonce{alg: alg}
		var c strings.Builder
		fmt.Fprintf(&c, "Digest realm=%q, nonce=%q", d.Realm, nonce)
		switch d.QOP {
		case "":
			c.WriteString(`, qop="auth"`)
		case "none":
		default:
			fmt.Fprintf(&c, ", qop=%q", d.QOP)
		}
		if alg != "" {
			c.WriteString(", algorithm=" + alg)
		}
		if d.Opaque != "" {
			fmt.Fprintf(&c, ", opaque=%q", d.Opaque)
		}
		if d.UserHash {
			c.WriteString(", userhash=true")
		}
		if d.Charset {
			c.WriteString(", charset=UTF-8")
		}
		if stale {
			c.WriteString(", stale=true")
		} else {
			c.WriteString(", stale=false")
		}
		out = append(out, c.String())
	}
	return append(out, d.Extra...)
}

// check verifies a Digest answer; stale reports a right answer with a nonce
// that is no longer accepted.
func (d *Digest) check(req *http.Request, h string) (ok, stale bool) {
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return false, false
	}
	p, err := parseParams(rest)
	if err != nil {
		return false, false
	}
	n := d.nonces[p["nonce"]]
	if n == nil || p["realm"] != d.Realm || p["uri"] != req.RequestURI || !strings.EqualFold(p["algorithm"], n.alg) {
		return false, false
	}
	if d.Opaque != "" && p["opaque"] != d.Opaque {
		return false, false
	}
	newHash, sess := hashFor(n.alg)
	H := func(s string) string { x := newHash(); x.Write([]byte(s)); return hex.EncodeToString(x.Sum(nil)) }
	user := p["username"]
	switch {
	case d.UserHash:
		if p["userhash"] != "true" || user != H(d.Username+":"+d.Realm) {
			return false, false
		}
		user = d.Username
	case p["username*"] != "":
		v, ok := strings.CutPrefix(p["username*"], "UTF-8''")
		if !ok {
			return false, false
		}
		if user, err = url.PathUnescape(v); err != nil {
			return false, false
		}
	}
	if user != d.Username {
		return false, false
	}
	ha1 := H(d.Username + ":" + d.Realm + ":" + d.Password)
	if sess {
		ha1 = H(ha1 + ":" + p["nonce"] + ":" + p["cnonce"])
	}
	a2 := req.Method + ":" + p["uri"]
	if p["qop"] == "auth-int" {
		a2 += ":" + H("")
	}
	var want string
	var nc uint64
	if d.QOP == "none" {
		if p["qop"] != "" || p["nc"] != "" {
			return false, false
		}
		want = H(ha1 + ":" + p["nonce"] + ":" + H(a2))
	} else {
		if p["qop"] != "auth" && p["qop"] != "auth-int" || len(p["nc"]) != 8 || p["cnonce"] == "" {
			return false, false
		}
		if nc, err = strconv.ParseUint(p["nc"], 16, 32); err != nil {
			return false, false
		}
		want = H(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":" + p["qop"] + ":" + H(a2))
	}
	if p["response"] != want {
		return false, false
	}
	if n.stale || d.QOP != "none" && nc <= n.lastNC {
		return false, true
	}
	n.lastNC = nc
	n.uses++
	if d.MaxNonceUses > 0 && n.uses >= d.MaxNonceUses {
		n.stale = true
	}
	return true, false
}

func hashFor(alg string) (func() hash.Hash, bool) {
	base, sess := strings.CutSuffix(strings.ToUpper(alg), "-SESS")
	switch base {
	case "SHA-256":
		return sha256.New, sess
	case "SHA-512-256":
		return sha512.New512_256, sess
	}
	return md5.New, sess
}

// parseParams splits a comma-separated list of name=value pairs whose
// values may be quoted strings with backslash escapes.
func parseParams(s string) (map[string]string, error) {
	out := make(map[string]string)
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return nil, fmt.Errorf("no '=' after %q", s[i:])
		}
		name := strings.ToLower(strings.TrimSpace(s[i : i+eq]))
		i += eq + 1
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var v strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quote in %q", name)
			}
			i++
		} else {
			for ; i < len(s) && s[i] != ',' && s[i] != ' '; i++ {
				v.WriteByte(s[i])
			}
		}
		out[name] = v.String()
	}
}

// SetPassword changes the password the proxy expects, as when a user's
// password changes while clients hold cached keys.
func (d *Digest) SetPassword(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Password = p
}
