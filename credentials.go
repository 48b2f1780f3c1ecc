package wsproxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// The order of the credential sources and the cleartext rule are
// documented once, on Dialer.Credentials; credentials() in auth.go follows
// them.

// maxCachedProxies bounds the cache; beyond it an arbitrary proxy is
// forgotten.
const maxCachedProxies = 64

// authEntry is what worked at one proxy for one realm.
type authEntry struct {
	scheme   string       // the scheme's Name
	realm    string       // "" for schemes without realms (NTLM)
	username string       // for matching against the proxy URL's user
	creds    *Credentials // Basic, NTLM and custom schemes; nil for Digest
	digest   *digestReuse // Digest: the key (HA1) and nonce state, no password
}

func (e *authEntry) clone() *authEntry {
	c := *e
	if e.creds != nil {
		cr := *e.creds
		c.creds = &cr
	}
	if e.digest != nil {
		d := *e.digest
		c.digest = &d
	}
	return &c
}

// proxyAuth is the cache for one proxy.
type proxyAuth struct {
	last    string // realm of the latest success
	byRealm map[string]*authEntry
}

// authCache holds, per proxy and realm, the scheme and credentials that
// worked last. It is safe for concurrent use.
type authCache struct {
	mu      sync.Mutex
	proxies map[string]*proxyAuth
	// ncUsed is, per Digest nonce, the highest nonce count handed out or
	// seen in a success. It outlives entries that are replaced or dropped,
	// so that a late success with an older nonce cannot bring its count
	// back and have a later dial send a count already sent.
	ncUsed map[string]uint32
}

// maxTrackedNonces bounds ncUsed.
const maxTrackedNonces = 256

// noteNC records that nc was used with nonce. The caller holds c.mu.
func (c *authCache) noteNC(nonce string, nc uint32) {
	if c.ncUsed == nil {
		c.ncUsed = make(map[string]uint32)
	}
	if _, ok := c.ncUsed[nonce]; !ok && len(c.ncUsed) >= maxTrackedNonces {
		for k := range c.ncUsed {
			delete(c.ncUsed, k)
			break
		}
	}
	if nc > c.ncUsed[nonce] {
		c.ncUsed[nonce] = nc
	}
}

// authCacheInit guards the lazy creation of each Dialer's cache.
var authCacheInit sync.Mutex

func (d *Dialer) authCache() *authCache {
	authCacheInit.Lock()
	defer authCacheInit.Unlock()
	if d.auth == nil {
		d.auth = &authCache{proxies: make(map[string]*proxyAuth)}
	}
	return d.auth
}

// ForgetCredentials empties the Dialer's cache of proxy credentials that
// worked (and of Digest keys and nonces), so the next dial to each proxy
// starts with a challenge and asks the credential sources again. Call it
// when the user logs out or a password changes.
func (d *Dialer) ForgetCredentials() {
	c := d.authCache()
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.proxies)
}

// proxyKey names a proxy in the cache: scheme, host and port.
func proxyKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// preemptive returns a copy of the latest success at proxy, for sending
// before the proxy asks. For Digest the nonce count is advanced in the
// cache, so concurrent dials never send the same one.
func (c *authCache) preemptive(proxy string) *authEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proxies[proxy]
	if p == nil {
		return nil
	}
	e := p.byRealm[p.last]
	if e == nil {
		return nil
	}
	if e.digest != nil {
		e.digest.nc = max(e.digest.nc, c.ncUsed[e.digest.ch.nonce]) + 1
		c.noteNC(e.digest.ch.nonce, e.digest.nc)
	}
	return e.clone()
}

// lookup returns a copy of the entry for proxy and realm, restricted to
// scheme unless it is "".
func (c *authCache) lookup(proxy, realm, scheme string) *authEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proxies[proxy]
	if p == nil {
		return nil
	}
	e := p.byRealm[realm]
	if e == nil || scheme != "" && !strings.EqualFold(e.scheme, scheme) {
		return nil
	}
	return e.clone()
}

// store records a success. For Digest with the same nonce, the nonce count
// never goes back (a concurrent dial may have advanced it).
func (c *authCache) store(proxy string, e *authEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proxies[proxy]
	if p == nil {
		if len(c.proxies) >= maxCachedProxies {
			for k := range c.proxies {
				delete(c.proxies, k)
				break
			}
		}
		p = &proxyAuth{byRealm: make(map[string]*authEntry)}
		c.proxies[proxy] = p
	}
	e = e.clone()
	if d := e.digest; d != nil {
		d.nc = max(d.nc, c.ncUsed[d.ch.nonce])
		c.noteNC(d.ch.nonce, d.nc)
	}
	p.byRealm[e.realm] = e
	p.last = e.realm
}

// drop forgets the entry for proxy and realm if it is for scheme, and
// reports whether there was one.
func (c *authCache) drop(proxy, realm, scheme string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proxies[proxy]
	if p == nil {
		return false
	}
	e := p.byRealm[realm]
	if e == nil || !strings.EqualFold(e.scheme, scheme) {
		return false
	}
	delete(p.byRealm, realm)
	if len(p.byRealm) == 0 {
		delete(c.proxies, proxy)
	}
	return true
}

// netrcPath returns the netrc file to read: Dialer.NetrcFile, else $NETRC,
// else ~/.netrc (on Windows ~/_netrc when ~/.netrc does not exist).
func (d *Dialer) netrcPath() string {
	if d.NetrcFile != "" {
		return d.NetrcFile
	}
	if p := d.env("NETRC"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(home, ".netrc")
	if runtime.GOOS == "windows" {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(home, "_netrc")
		}
	}
	return p
}

// netrcCredentials reads the netrc file at path and returns the login and
// password for host. A missing file means no credentials, not an error.
func netrcCredentials(path, host string) (*Credentials, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseNetrc(string(data), host)
}

// parseNetrc finds host's entry in a netrc file: the first "machine" whose
// name equals host (case-insensitively), else the "default" entry. It
// understands login, password, account (ignored) and macdef (skipped up to
// the next empty line); values may be double-quoted with backslash
// escapes, as curl allows. An entry with a login but no password gives an
// empty password. Errors never quote the file's contents.
func parseNetrc(data, host string) (*Credentials, error) {
	var (
		found   *Credentials // the entry for host
		deflt   *Credentials
		cur     *Credentials // the entry being read, nil when skipped
		inEntry bool
	)
	toks, err := netrcTokens(data)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(toks); i++ {
		arg := func() (string, error) {
			if i+1 >= len(toks) || toks[i+1].macdef {
				return "", fmt.Errorf("netrc: %q without a value", toks[i].s)
			}
			i++
			return toks[i].s, nil
		}
		switch t := toks[i]; {
		case t.macdef:
			// a macro body, already skipped by the tokenizer
		case t.s == "machine":
			name, err := arg()
			if err != nil {
				return nil, err
			}
			if found != nil {
				return found, nil
			}
			cur, inEntry = nil, true
			if strings.EqualFold(name, host) {
				found = &Credentials{}
				cur = found
			}
		case t.s == "default":
			if found != nil {
				return found, nil
			}
			inEntry = true
			cur = nil
			if deflt == nil {
				deflt = &Credentials{}
				cur = deflt
			}
		case t.s == "login" || t.s == "password" || t.s == "account":
			v, err := arg()
			if err != nil {
				return nil, err
			}
			if !inEntry {
				return nil, fmt.Errorf("netrc: %q before any machine", t.s)
			}
			if cur != nil {
				switch t.s {
				case "login":
					cur.Username = v
				case "password":
					cur.Password = v
				}
			}
		case t.s == "macdef":
			if _, err := arg(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("netrc: unknown keyword at token %d", i+1)
		}
	}
	if found != nil {
		return found, nil
	}
	return deflt, nil
}

type netrcToken struct {
	s      string
	macdef bool // a skipped macro body
}

// netrcTokens splits a netrc file into white-space separated tokens, with
// double-quoted tokens unescaped and macro bodies (after "macdef name", up
// to an empty line) collapsed into one skipped token.
func netrcTokens(data string) ([]netrcToken, error) {
	var out []netrcToken
	i := 0
	for i < len(data) {
		c := data[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		if c == '#' { // comment to the end of the line
			for i < len(data) && data[i] != '\n' {
				i++
			}
			continue
		}
		var b strings.Builder
		if c == '"' {
			i++
			closed := false
			for i < len(data) {
				if data[i] == '\\' && i+1 < len(data) {
					switch n := data[i+1]; n {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(n)
					}
					i += 2
					continue
				}
				if data[i] == '"' {
					i++
					closed = true
					break
				}
				b.WriteByte(data[i])
				i++
			}
			if !closed {
				return nil, errors.New("netrc: unterminated quoted value")
			}
		} else {
			for i < len(data) && !strings.ContainsRune(" \t\r\n", rune(data[i])) {
				b.WriteByte(data[i])
				i++
			}
		}
		out = append(out, netrcToken{s: b.String()})
		// After "macdef name", skip the body up to an empty line.
		if n := len(out); n >= 2 && out[n-2].s == "macdef" && !out[n-2].macdef {
			end := strings.Index(data[i:], "\n\n")
			if end < 0 {
				i = len(data)
			} else {
				i += end + 2
			}
			out = append(out, netrcToken{macdef: true})
		}
	}
	return out, nil
}
