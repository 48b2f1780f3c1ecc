package httpauth

import (
	"net"
	"net/url"
	"strings"
	"sync"
)

// MaxStoredProxies bounds a Store; beyond it an arbitrary proxy is
// forgotten.
const MaxStoredProxies = 64

// Entry is what worked at one proxy for one realm.
type Entry struct {
	Scheme   string       // the scheme's name, as AuthScheme.Name gives it
	Realm    string       // "" for schemes without realms (NTLM)
	Username string       // for matching against the proxy URL's user
	Creds    *Credentials // for schemes that keep no state of their own (Basic, NTLM, custom)
	State    any          // what a scheme keeps instead of the password (Digest's key); opaque here
}

// Store holds, per proxy and realm, the scheme and credentials (or the
// scheme's own state) that worked last. Its zero value is ready; it is
// safe for concurrent use. It hands out and takes copies of Entry; a State
// is shared, and a scheme that keeps one makes it safe to share.
type Store struct {
	mu      sync.Mutex
	proxies map[string]*proxyEntries
}

// proxyEntries is the store for one proxy.
type proxyEntries struct {
	last    string // realm of the latest success
	byRealm map[string]*Entry
}

// ProxyKey names a proxy in a Store: scheme, host and port.
func ProxyKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

func (e *Entry) clone() *Entry {
	c := *e
	if e.Creds != nil {
		cr := *e.Creds
		c.Creds = &cr
	}
	return &c
}

// Latest returns a copy of the latest success at proxy, or nil.
func (s *Store) Latest(proxy string) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[proxy]
	if p == nil || p.byRealm[p.last] == nil {
		return nil
	}
	return p.byRealm[p.last].clone()
}

// Lookup returns a copy of the entry for proxy and realm, restricted to
// scheme (compared case-insensitively) unless scheme is "".
func (s *Store) Lookup(proxy, realm, scheme string) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[proxy]
	if p == nil {
		return nil
	}
	e := p.byRealm[realm]
	if e == nil || scheme != "" && !strings.EqualFold(e.Scheme, scheme) {
		return nil
	}
	return e.clone()
}

// Put records a success, replacing what the proxy and realm had.
func (s *Store) Put(proxy string, e *Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proxies == nil {
		s.proxies = make(map[string]*proxyEntries)
	}
	p := s.proxies[proxy]
	if p == nil {
		if len(s.proxies) >= MaxStoredProxies {
			for k := range s.proxies {
				delete(s.proxies, k)
				break
			}
		}
		p = &proxyEntries{byRealm: make(map[string]*Entry)}
		s.proxies[proxy] = p
	}
	e = e.clone()
	p.byRealm[e.Realm] = e
	p.last = e.Realm
}

// Drop forgets the entry for proxy and realm if it is for scheme, and
// reports whether there was one.
func (s *Store) Drop(proxy, realm, scheme string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[proxy]
	if p == nil {
		return false
	}
	e := p.byRealm[realm]
	if e == nil || !strings.EqualFold(e.Scheme, scheme) {
		return false
	}
	delete(p.byRealm, realm)
	if len(p.byRealm) == 0 {
		delete(s.proxies, proxy)
	}
	return true
}

// Clear forgets everything.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.proxies)
}
