// Package sysproxy reads the operating system's proxy settings: GNOME
// (gsettings) and KDE (kioslaverc) on Linux, scutil on macOS, the user's
// Internet Settings on Windows, each turned into one portable Settings
// value. The per-OS files set the look-up hook in init (tailscale's
// pattern); the portable core caches its answers, bounds each look-up by a
// timeout and backs off after failures. It also knows the machine's DNS
// search domains, which WPAD needs.
package sysproxy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// Source names the settings a Settings value was read from; the root
// package's Source constants for the operating systems are these values.
type Source string

// The operating-system sources.
const (
	GNOME   Source = "GNOME"   // org.gnome.system.proxy, read with gsettings
	KDE     Source = "KDE"     // kioslaverc's [Proxy Settings]
	MacOS   Source = "macOS"   // scutil --proxy
	Windows Source = "Windows" // the user's Internet Settings in the registry
)

// Settings is one snapshot of the OS's proxy configuration, in the form
// every platform's parser produces.
type Settings struct {
	Source Source // where it was read: GNOME, KDE...
	From   string // the tool or file, for the diagnostic ("gsettings", "~/.config/kioslaverc")

	AutoDetect bool   // look for a PAC script by WPAD first
	PACURL     string // then use this PAC script

	// Manual proxies, used when neither of the above gave an answer. For
	// ws:// and http:// targets HTTP serves, else SOCKS; for wss:// and
	// https:// HTTPS serves, else SOCKS. Each parser applies its OS's rule
	// for a missing HTTPS proxy (GNOME and Windows' single form reuse the
	// HTTP one) before this.
	HTTP, HTTPS, SOCKS *url.URL

	// Bypass lists hosts that go direct (see BypassMatch for the forms).
	// BypassSimple sends plain host names (no dot) direct: Windows'
	// "<local>", macOS's ExcludeSimpleHostnames. Reversed (KDE's
	// ReversedException) turns Bypass into the list of the only hosts that
	// use the proxy.
	Bypass       []string
	BypassSimple bool
	Reversed     bool
}

// osLookup reads the machine's proxy settings. Per-OS files set it in
// init; nil means the platform has none. getenv is the environment (the
// desktop in use, KDE's variable names). A nil result with a nil error
// means no settings apply.
var osLookup func(ctx context.Context, getenv func(string) string) (*Settings, error)

// Timing of OS look-ups.
const (
	// LookupTimeout bounds one look-up (a gsettings or scutil run, a
	// registry read).
	LookupTimeout = 3 * time.Second
	// CacheTTL is how long a good answer is used before asking again.
	CacheTTL = 30 * time.Second
	// MaxBackoff caps the wait after repeated failures, during which
	// the last good answer (or none) is used without asking.
	MaxBackoff = time.Minute
)

// Cache caches the OS settings: the last good answer for CacheTTL,
// and after a failure that answer (or none) until a backoff that doubles
// with each failure (1 s, 2 s... up to MaxBackoff) has passed. One
// look-up runs at a time; concurrent callers wait for it or their context.
type Cache struct {
	lookup func(ctx context.Context) (*Settings, error)
	now    func() time.Time

	mu       sync.Mutex
	good     *Settings
	haveGood bool
	goodAt   time.Time
	lastErr  error
	failures int
	retryAt  time.Time
	inflight chan struct{}
}

// Get returns the settings (nil when none apply), and an error only when
// there is no good answer to fall back on.
func (c *Cache) Get(ctx context.Context) (*Settings, error) {
	for {
		c.mu.Lock()
		now := c.now()
		if c.haveGood && now.Sub(c.goodAt) < CacheTTL {
			s := c.good
			c.mu.Unlock()
			return s, nil
		}
		if now.Before(c.retryAt) { // backing off
			s, have, err := c.good, c.haveGood, c.lastErr
			c.mu.Unlock()
			if have {
				return s, nil
			}
			return nil, fmt.Errorf("%w (not retried for %v)", err, c.retryAt.Sub(now).Round(time.Second))
		}
		if wait := c.inflight; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.inflight = done
		c.mu.Unlock()

		lctx, cancel := context.WithTimeout(ctx, LookupTimeout)
		s, err := c.lookup(lctx)
		cancel()

		c.mu.Lock()
		c.inflight = nil
		close(done)
		switch {
		case err == nil:
			c.good, c.haveGood, c.goodAt = s, true, c.now()
			c.failures, c.retryAt, c.lastErr = 0, time.Time{}, nil
		case ctx.Err() != nil:
			// The caller gave up: not the OS's failure.
		default:
			c.failures++
			backoff := min(time.Second<<min(c.failures-1, 10), MaxBackoff)
			c.retryAt, c.lastErr = c.now().Add(backoff), err
		}
		good, have := c.good, c.haveGood
		c.mu.Unlock()
		if err != nil && have {
			return good, nil // the last good answer
		}
		return s, err
	}
}

// Invalidate forgets the cached answer and any backoff.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.good, c.haveGood, c.goodAt = nil, false, time.Time{}
	c.failures, c.retryAt, c.lastErr = 0, time.Time{}, nil
}

// NewCache returns a Cache around lookup, which is called under
// LookupTimeout; now is the clock (nil means time.Now).
func NewCache(lookup func(ctx context.Context) (*Settings, error), now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{lookup: lookup, now: now}
}

// processCache holds the process's OS settings, read with the process
// environment.
var processCache = NewCache(func(ctx context.Context) (*Settings, error) {
	if osLookup == nil {
		return nil, nil
	}
	return osLookup(ctx, os.Getenv)
}, nil)

// Get returns the machine's proxy settings (nil when none apply), through
// the process-wide cache: see Cache.Get.
func Get(ctx context.Context) (*Settings, error) { return processCache.Get(ctx) }

// Invalidate forgets the process-wide cached settings and any backoff.
func Invalidate() { processCache.Invalidate() }

// ManualProxy picks the manual proxy of s for u (ws, wss, http or
// https), nil for direct, with the reason.
func (s *Settings) ManualProxy(u *url.URL) (*url.URL, string) {
	host := u.Hostname()
	matched := ""
	if s.BypassSimple && isPlainHost(host) {
		matched = "plain host names"
	} else {
		for _, pat := range s.Bypass {
			if BypassMatch(pat, host, u.Port()) {
				matched = pat
				break
			}
		}
	}
	if s.Reversed {
		if matched == "" {
			return nil, "not in the list of hosts that use the proxy (reversed exceptions)"
		}
	} else if matched != "" {
		return nil, fmt.Sprintf("exception %q matches", matched)
	}
	secure := u.Scheme == "wss" || u.Scheme == "https"
	switch {
	case secure && s.HTTPS != nil:
		return s.HTTPS, "the HTTPS proxy"
	case !secure && s.HTTP != nil:
		return s.HTTP, "the HTTP proxy"
	case s.SOCKS != nil:
		return s.SOCKS, "the SOCKS proxy"
	}
	if secure {
		return nil, "no HTTPS or SOCKS proxy set"
	}
	return nil, "no HTTP or SOCKS proxy set"
}

// HasManual reports whether s names any manual proxy.
func (s *Settings) HasManual() bool {
	return s.HTTP != nil || s.HTTPS != nil || s.SOCKS != nil
}

// isPlainHost reports whether host is a name without a dot (not an IP).
func isPlainHost(host string) bool {
	return host != "" && !strings.Contains(host, ".") && net.ParseIP(host) == nil
}

// BypassMatch reports whether an exception pattern from OS settings covers
// host (and port, "" for the scheme's default). Patterns, case-insensitive:
//
//	<local>             plain host names (Windows)
//	*                   every host
//	10.0.0.0/8, fe80::/10, 169.254/16   CIDR ranges (macOS's short IPv4 form too), for IP literals
//	*.corp.example, 10.*, a?c.example   shell wildcards: * any run, ? one character
//	.corp.example       the domain and its subdomains
//	corp.example        the host itself and its subdomains
//	host:port           as above, on that port only
//	192.0.2.1, [::1]    that address
func BypassMatch(pattern, host, port string) bool {
	p := strings.ToLower(strings.TrimSpace(pattern))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if p == "" || host == "" {
		return false
	}
	switch p {
	case "<local>":
		return isPlainHost(host)
	case "*":
		return true
	}
	if strings.Contains(p, "/") {
		return cidrMatch(p, host)
	}
	// A port, except in a bare IPv6 literal.
	if h, pt, err := net.SplitHostPort(p); err == nil && !strings.Contains(p, "*") {
		if pt != port {
			return false
		}
		p = h
	} else if strings.HasPrefix(p, "[") && strings.HasSuffix(p, "]") {
		p = p[1 : len(p)-1]
	}
	if strings.ContainsAny(p, "*?") {
		return proxyurl.MatchGlob(p, host)
	}
	if ip := net.ParseIP(p); ip != nil {
		return ip.Equal(net.ParseIP(host))
	}
	p = strings.TrimPrefix(p, ".")
	return host == p || strings.HasSuffix(host, "."+p)
}

// cidrMatch matches an IP literal host against a CIDR pattern, accepting
// macOS's short IPv4 forms ("169.254/16").
func cidrMatch(p, host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	addr, bits, _ := strings.Cut(p, "/")
	if !strings.Contains(addr, ":") {
		for strings.Count(addr, ".") < 3 {
			addr += ".0"
		}
	}
	_, n, err := net.ParseCIDR(addr + "/" + bits)
	return err == nil && n.Contains(ip)
}
