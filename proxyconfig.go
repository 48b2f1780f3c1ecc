package wsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Which proxy serves which URL.
//
// The Dialer decides per dial, in this order:
//
//  1. Dialer.Proxy, when set, alone decides (return nil for a direct
//     connection).
//  2. The environment: ws_proxy / wss_proxy (curl's names), then
//     http_proxy / https_proxy, then all_proxy, each in lower then upper
//     case, with no_proxy / NO_PROXY honoured. See ProxyFromEnvironment.
//  3. The operating system's settings (GNOME or KDE on Linux, scutil on
//     macOS, the registry on Windows): automatic detection (WPAD), then a
//     PAC script, then manual proxies with their exceptions. See
//     ProxyForURL.
//  4. A direct connection.
//
// decide (decision.go) implements it; the per-OS files set sysLookup.

// ProxyFromEnvironment returns the proxy for req's URL from the
// environment, or nil for a direct connection. It has the signature of
// http.Transport.Proxy, so it also serves plain HTTP clients.
//
// The variables are read at each call. For ws:// (and http://) URLs it uses
// the first non-empty of ws_proxy, WS_PROXY, http_proxy, HTTP_PROXY,
// all_proxy, ALL_PROXY; for wss:// (and https://) wss_proxy, WSS_PROXY,
// https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY. A value without a scheme is
// taken as http://. NO_PROXY (or no_proxy) lists hosts, domains (".example.com"
// or "example.com" matches subdomains too), host:port pairs, CIDR ranges or
// "*" to go direct; requests to localhost and loopback addresses always go
// direct. As in net/http, HTTP_PROXY is refused with an error when
// REQUEST_METHOD is set (a CGI program, where HTTP_PROXY can come from a
// client's "Proxy:" header).
func ProxyFromEnvironment(req *http.Request) (*url.URL, error) {
	p, _, err := proxyFromEnv(os.Getenv, req.URL)
	return p, err
}

// proxyFromEnv is ProxyFromEnvironment with the environment passed in, so
// tests need not change the process environment. configured reports whether
// any proxy variable applies to u's scheme: when one does, the environment
// alone decides, even when NO_PROXY makes the answer "direct".
func proxyFromEnv(getenv func(string) string, u *url.URL) (proxy *url.URL, configured bool, err error) {
	proxy, _, configured, err = envProxy(getenv, u)
	return proxy, configured, err
}

// envProxy is proxyFromEnv that also names the variable that decided.
func envProxy(getenv func(string) string, u *url.URL) (proxy *url.URL, from string, configured bool, err error) {
	secure := u.Scheme == "wss" || u.Scheme == "https"
	names := []string{"ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}
	if secure {
		names = []string{"wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}
	}
	var value string
	for _, name := range names {
		if value = getenv(name); value != "" {
			if name == "HTTP_PROXY" && getenv("REQUEST_METHOD") != "" {
				return nil, name, true, errors.New("refusing to use HTTP_PROXY value in CGI environment; see golang.org/s/cgihttpproxy")
			}
			from = name
			break
		}
	}
	if value == "" {
		return nil, "", false, nil
	}
	// httpproxy ignores a value it cannot parse and goes direct; say so
	// instead. The value is not quoted: it may hold a password.
	if err := checkProxyValue(value); err != nil {
		return nil, from, true, fmt.Errorf("invalid proxy URL in %s: %w", from, err)
	}
	noProxy := getenv("NO_PROXY")
	if noProxy == "" {
		noProxy = getenv("no_proxy")
	}
	cfg := httpproxy.Config{NoProxy: noProxy}
	lookup := *u
	if secure {
		cfg.HTTPSProxy = value
		lookup.Scheme = "https"
	} else {
		cfg.HTTPProxy = value
		lookup.Scheme = "http"
	}
	proxy, err = cfg.ProxyFunc()(&lookup)
	return proxy, from, true, err
}

func checkProxyValue(v string) error {
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("cannot parse it")
	}
	if u.Hostname() == "" {
		return errors.New("no host")
	}
	return nil
}

// httpSchemeURL maps ws to http and wss to https, the only schemes proxy
// functions written for net/http understand.
func httpSchemeURL(u *url.URL) *url.URL {
	m := *u
	switch u.Scheme {
	case "ws":
		m.Scheme = "http"
	case "wss":
		m.Scheme = "https"
	}
	return &m
}

// redact formats a proxy URL for messages with its password hidden.
func redact(u *url.URL) string {
	if u == nil {
		return "direct"
	}
	return u.Redacted()
}

// Operating-system settings, in a form every platform's parser produces.
// The per-OS files set sysLookup in init (tailscale's pattern): the portable
// core below caches its answers, bounds each look-up by a timeout and backs
// off after failures.

// systemSettings is one snapshot of the OS's proxy configuration. The
// fields are exported only so that tests can fill them through
// export_test.go; the type is not part of the API.
type systemSettings struct {
	Source Source // where it was read: SourceGNOME, SourceKDE...
	From   string // the tool or file, for the diagnostic ("gsettings", "~/.config/kioslaverc")

	AutoDetect bool   // look for a PAC script by WPAD first
	PACURL     string // then use this PAC script

	// Manual proxies, used when neither of the above gave an answer. For
	// ws:// and http:// targets HTTP serves, else SOCKS; for wss:// and
	// https:// HTTPS serves, else SOCKS. Each parser applies its OS's rule
	// for a missing HTTPS proxy (GNOME and Windows' single form reuse the
	// HTTP one) before this.
	HTTP, HTTPS, SOCKS *url.URL

	// Bypass lists hosts that go direct (see bypassMatch for the forms).
	// BypassSimple sends plain host names (no dot) direct: Windows'
	// "<local>", macOS's ExcludeSimpleHostnames. Reversed (KDE's
	// ReversedException) turns Bypass into the list of the only hosts that
	// use the proxy.
	Bypass       []string
	BypassSimple bool
	Reversed     bool
}

// sysLookup reads the machine's proxy settings. Per-OS files set it in
// init; nil means the platform has none. getenv is the environment (the
// desktop in use, KDE's variable names). A nil result with a nil error
// means no settings apply.
var sysLookup func(ctx context.Context, getenv func(string) string) (*systemSettings, error)

// Timing of OS look-ups.
const (
	// sysLookupTimeout bounds one look-up (a gsettings or scutil run, a
	// registry read).
	sysLookupTimeout = 3 * time.Second
	// sysCacheTTL is how long a good answer is used before asking again.
	sysCacheTTL = 30 * time.Second
	// sysMaxBackoff caps the wait after repeated failures, during which
	// the last good answer (or none) is used without asking.
	sysMaxBackoff = time.Minute
)

// sysCache caches the OS settings: the last good answer for sysCacheTTL,
// and after a failure that answer (or none) until a backoff that doubles
// with each failure (1 s, 2 s... up to sysMaxBackoff) has passed. One
// look-up runs at a time; concurrent callers wait for it or their context.
type sysCache struct {
	lookup func(ctx context.Context) (*systemSettings, error)
	now    func() time.Time

	mu       sync.Mutex
	good     *systemSettings
	haveGood bool
	goodAt   time.Time
	lastErr  error
	failures int
	retryAt  time.Time
	inflight chan struct{}
}

// get returns the settings (nil when none apply), and an error only when
// there is no good answer to fall back on.
func (c *sysCache) get(ctx context.Context) (*systemSettings, error) {
	for {
		c.mu.Lock()
		now := c.now()
		if c.haveGood && now.Sub(c.goodAt) < sysCacheTTL {
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

		lctx, cancel := context.WithTimeout(ctx, sysLookupTimeout)
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
			backoff := min(time.Second<<min(c.failures-1, 10), sysMaxBackoff)
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

// invalidate forgets the cached answer and any backoff.
func (c *sysCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.good, c.haveGood, c.goodAt = nil, false, time.Time{}
	c.failures, c.retryAt, c.lastErr = 0, time.Time{}, nil
}

// systemCache holds the process's OS settings, read with the process
// environment.
var systemCache = &sysCache{
	now: time.Now,
	lookup: func(ctx context.Context) (*systemSettings, error) {
		if sysLookup == nil {
			return nil, nil
		}
		return sysLookup(ctx, os.Getenv)
	},
}

// proxyForManual picks the manual proxy of s for u (ws, wss, http or
// https), nil for direct, with the reason.
func (s *systemSettings) proxyForManual(u *url.URL) (*url.URL, string) {
	host := u.Hostname()
	matched := ""
	if s.BypassSimple && isPlainHost(host) {
		matched = "plain host names"
	} else {
		for _, pat := range s.Bypass {
			if bypassMatch(pat, host, u.Port()) {
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

func (s *systemSettings) hasManual() bool {
	return s.HTTP != nil || s.HTTPS != nil || s.SOCKS != nil
}

// isPlainHost reports whether host is a name without a dot (not an IP).
func isPlainHost(host string) bool {
	return host != "" && !strings.Contains(host, ".") && net.ParseIP(host) == nil
}

// bypassMatch reports whether an exception pattern from OS settings covers
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
func bypassMatch(pattern, host, port string) bool {
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
		return globMatch(p, host)
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

// globMatch matches s against a shell pattern where * is any run of
// characters and ? any one; everything else is literal.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// hostPortURL builds a proxy URL from a scheme and a host and port given
// separately (port 0 or "" means none), or nil when host is empty. host
// may carry its own scheme ("http://proxy"), which wins, and IPv6 literals
// may come with or without brackets.
func hostPortURL(scheme, host, port string) *url.URL {
	host = strings.TrimSpace(host)
	port = strings.TrimSpace(port)
	if host == "" {
		return nil
	}
	if i := strings.Index(host, "://"); i >= 0 {
		scheme, host = strings.ToLower(host[:i]), host[i+3:]
		if scheme == "socks" {
			scheme = "socks5h"
		}
	}
	host = strings.TrimSuffix(host, "/")
	if port == "0" {
		port = ""
	}
	if port == "" {
		if h, p, err := net.SplitHostPort(host); err == nil {
			host, port = h, p
		}
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return nil
	}
	hp := host
	if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	if port != "" {
		hp = net.JoinHostPort(host, port)
	}
	return &url.URL{Scheme: scheme, Host: hp}
}
