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
	"time"
	"weak"

	"golang.org/x/net/http/httpproxy"

	"github.com/wsproxy/wsproxy/internal/pac"
	"github.com/wsproxy/wsproxy/internal/proxyurl"
	"github.com/wsproxy/wsproxy/internal/sysproxy"
)

// Source says which settings decided the proxy for a URL.
type Source string

// The sources of a Decision, in the order they are consulted.
const (
	SourceDialer      Source = "Dialer.Proxy"           // the Dialer's own Proxy function
	SourceEnvironment Source = "environment"            // ws_proxy, https_proxy, ALL_PROXY, NO_PROXY...
	SourceGNOME       Source = Source(sysproxy.GNOME)   // org.gnome.system.proxy, read with gsettings
	SourceKDE         Source = Source(sysproxy.KDE)     // kioslaverc's [Proxy Settings]
	SourceMacOS       Source = Source(sysproxy.MacOS)   // scutil --proxy
	SourceWindows     Source = Source(sysproxy.Windows) // the user's Internet Settings in the registry
	SourceNone        Source = "none"                   // nothing configured: direct
)

// A Decision says how a Dialer reaches a URL: the proxies to try in order,
// and where that choice came from. It is what (*Dialer).ProxyForURL and
// "wsdial -show-proxy" report.
type Decision struct {
	// Target is the URL decided for, without credentials.
	Target string

	// Proxies are tried in order, each one when the one before could not
	// be reached (refused, unreachable, timed out, TLS to the proxy
	// failed); a proxy that answers, even with an error status, ends the
	// list. A nil entry means a direct connection. Never empty: a direct
	// decision is []*url.URL{nil}. Proxy URLs may carry credentials:
	// print them with Redacted, as String does.
	Proxies []*url.URL

	// Source is the settings that decided.
	Source Source

	// PAC is the URL of the PAC script that decided, "" when none did.
	// With automatic detection it is the WPAD URL that answered.
	PAC string

	// Reason explains the decision in one line: the variable, setting or
	// exception that applied, the PAC script's answer, or why a PAC script
	// or OS look-up failed and what was used instead.
	Reason string
}

// Direct reports whether the decision is a direct connection only.
func (d Decision) Direct() bool {
	return len(d.Proxies) == 0 || (len(d.Proxies) == 1 && d.Proxies[0] == nil)
}

// String formats the decision on one line, passwords redacted:
// "PROXY 10.0.0.1:3128; DIRECT (from GNOME, PAC http://wpad/wpad.dat: ...)".
func (d Decision) String() string {
	var b strings.Builder
	b.WriteString(proxyList(d.Proxies))
	fmt.Fprintf(&b, " (from %s", d.Source)
	if d.PAC != "" {
		fmt.Fprintf(&b, ", PAC %s", d.PAC)
	}
	if d.Reason != "" {
		fmt.Fprintf(&b, ": %s", d.Reason)
	}
	b.WriteString(")")
	return b.String()
}

// proxyList formats proxies as a PAC-style list with passwords redacted.
func proxyList(ps []*url.URL) string {
	if len(ps) == 0 {
		return "DIRECT"
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = "DIRECT"
		if p != nil {
			parts[i] = p.Redacted()
		}
	}
	return strings.Join(parts, "; ")
}

// ProxyForURL tells how DefaultDialer would reach u: see
// (*Dialer).ProxyForURL.
func ProxyForURL(ctx context.Context, u *url.URL) (Decision, error) {
	return DefaultDialer.ProxyForURL(ctx, u)
}

// ProxyForURL tells how d would reach u (ws, wss, http or https): the
// proxies in the order a dial tries them and the settings that chose them.
// The order of resolution:
//
//  1. d.Proxy, when set, alone decides.
//  2. The environment (see ProxyFromEnvironment), when a variable applies
//     to u's scheme, even if NO_PROXY then sends u direct.
//  3. The operating system's settings: GNOME (gsettings) or KDE
//     (kioslaverc) on Linux, as XDG_CURRENT_DESKTOP names the desktop;
//     scutil --proxy on macOS; the user's Internet Settings on Windows.
//     Within them, automatic detection (WPAD) first, then a PAC script's
//     URL, then manual proxies with their exceptions, each step falling
//     through to the next when it gives no answer. As in browsers,
//     loopback targets (localhost, 127.0.0.0/8, ::1) skip this step.
//  4. Direct.
//
// OS settings are read under a 3 s timeout and cached for 30 s; after a
// failed read the last good answer is used and reading backs off (1 s
// doubling to 1 min). PAC scripts are fetched directly (never through a
// proxy) over http, https or file, up to 1 MiB within 10 s, and cached for
// 5 minutes (a failed fetch for 1 minute); each evaluation of
// FindProxyForURL has a 3 s limit. A PAC script that cannot be fetched,
// compiled or evaluated does not fail the decision: the next step applies
// (manual proxies, else direct) and Reason says why. InvalidateCache forgets
// all of it.
//
// The error is non-nil only when no decision can be made: d.Proxy returned
// an error, an environment variable holds an invalid URL, or the context
// ended.
func (d *Dialer) ProxyForURL(ctx context.Context, u *url.URL) (Decision, error) {
	if u == nil {
		return Decision{}, errors.New("wsproxy: nil URL")
	}
	return d.decide(ctx, u)
}

// InvalidateCache forgets the cached OS proxy settings, PAC scripts and
// WPAD results, and any backoff after failures, so that the next dial reads
// them again. Call it when the network changes.
func InvalidateCache() {
	sysproxy.Invalidate()
	pac.Invalidate()
}

// testHooks replace what a Dialer asks the machine, for tests only (see
// export_test.go); a nil field asks the machine.
type testHooks struct {
	getenv        func(string) string                                   // the environment
	settings      func(ctx context.Context) (*sysproxy.Settings, error) // the OS proxy settings
	lookupIP      func(ctx context.Context, host string) ([]net.IP, error)
	myIPs         func() []net.IP
	now           func() time.Time
	searchDomains func() []string
	pacLimit      time.Duration
	proxyLoopback bool // let OS settings proxy loopback targets
}

// env reads the environment (the test environment in tests). It is the
// Dialer's one way to read it.
func (d *Dialer) env(key string) string {
	if d.hooks != nil && d.hooks.getenv != nil {
		return d.hooks.getenv(key)
	}
	return os.Getenv(key)
}

// decide implements ProxyForURL.
func (d *Dialer) decide(ctx context.Context, u *url.URL) (Decision, error) {
	dec := Decision{Target: redactUser(u)}
	hu := proxyurl.HTTPScheme(u)
	if d.Proxy != nil {
		req := (&http.Request{Method: http.MethodGet, URL: hu, Host: hu.Host, Header: http.Header{}}).WithContext(ctx)
		p, err := d.Proxy(req)
		if err != nil {
			return dec, err
		}
		dec.Source, dec.Proxies = SourceDialer, []*url.URL{withScheme(p)}
		dec.Reason = "the Dialer's Proxy function chose it"
		return dec, nil
	}
	p, from, configured, err := envProxy(d.env, u)
	if configured {
		dec.Source = SourceEnvironment
		if err != nil {
			return dec, err
		}
		dec.Proxies = []*url.URL{withScheme(p)}
		if p != nil {
			dec.Reason = from + " is set"
		} else {
			dec.Reason = from + " is set, but NO_PROXY (or a loopback target) sends this URL direct"
		}
		return dec, nil
	}
	if isLoopback(u.Hostname()) && (d.hooks == nil || !d.hooks.proxyLoopback) {
		dec.Source, dec.Proxies = SourceNone, []*url.URL{nil}
		dec.Reason = "loopback targets go direct unless Dialer.Proxy or the environment says otherwise"
		return dec, nil
	}
	s, err := d.systemSettings(ctx)
	switch {
	case ctx.Err() != nil:
		return dec, ctx.Err()
	case err != nil:
		dec.Source, dec.Proxies = SourceNone, []*url.URL{nil}
		dec.Reason = fmt.Sprintf("reading the OS proxy settings failed (%v): direct", err)
		return dec, nil
	case s != nil:
		d.decideSystem(ctx, s, u, &dec)
		return dec, ctx.Err()
	}
	dec.Source, dec.Proxies = SourceNone, []*url.URL{nil}
	dec.Reason = "no proxy configured"
	return dec, nil
}

// systemSettings reads the OS proxy settings through sysproxy's cache.
func (d *Dialer) systemSettings(ctx context.Context) (*sysproxy.Settings, error) {
	if d.hooks != nil && d.hooks.settings != nil {
		return d.hooks.settings(ctx)
	}
	return sysproxy.Get(ctx)
}

// decideSystem applies OS settings: WPAD, then the PAC URL, then manual.
func (d *Dialer) decideSystem(ctx context.Context, s *sysproxy.Settings, u *url.URL, dec *Decision) {
	dec.Source = Source(s.Source)
	var notes []string
	if s.AutoDetect {
		script, pacURL, err := d.pacFetcher().WPAD(ctx, d.searchDomains())
		if err == nil {
			if d.decidePAC(ctx, script, pacURL, u, dec) {
				return
			}
			notes = append(notes, dec.Reason)
		} else {
			notes = append(notes, "automatic detection: "+err.Error())
		}
	}
	if s.PACURL != "" {
		script, err := d.pacFetcher().Script(ctx, s.PACURL)
		if err == nil {
			if d.decidePAC(ctx, script, s.PACURL, u, dec) {
				if len(notes) > 0 {
					dec.Reason += " (" + strings.Join(notes, "; ") + ")"
				}
				return
			}
			notes = append(notes, dec.Reason)
		} else {
			notes = append(notes, fmt.Sprintf("PAC %s: %v", proxyurl.RedactString(s.PACURL), err))
		}
	}
	dec.PAC = ""
	if s.HasManual() {
		p, why := s.ManualProxy(u)
		dec.Proxies = []*url.URL{p}
		dec.Reason = "manual settings: " + why
	} else {
		dec.Proxies = []*url.URL{nil}
		dec.Reason = "no proxy set"
		if !s.AutoDetect && s.PACURL == "" {
			dec.Reason = "proxy mode is none"
		}
	}
	if s.From != "" {
		dec.Reason += " [" + s.From + "]"
	}
	if len(notes) > 0 {
		dec.Reason += " (" + strings.Join(notes, "; ") + ")"
	}
}

// pacFetcher fetches PAC scripts as d's dials would: with d's NetDial,
// UserAgent and header cap. A Dialer with its own NetDial has its own
// cache entries (weakly keyed, so a Dialer that is collected never meets
// its successor's); the others share the process's.
func (d *Dialer) pacFetcher() pac.Fetcher {
	f := pac.Fetcher{Dial: d.netDial, UserAgent: d.userAgent(), MaxHeaderBytes: d.maxHeader()}
	if d.NetDial != nil {
		f.Scope = weak.Make(d)
	}
	return f
}

// pacEnv returns what the PAC helpers of d's dials ask the machine.
func (d *Dialer) pacEnv() pac.Env {
	e := pac.DefaultEnv()
	if h := d.hooks; h != nil {
		if h.lookupIP != nil {
			e.LookupIP = h.lookupIP
		}
		if h.myIPs != nil {
			e.MyIPs = h.myIPs
		}
		if h.now != nil {
			e.Now = h.now
		}
		if h.pacLimit > 0 {
			e.Limit = h.pacLimit
		}
	}
	return e
}

// searchDomains returns the DNS domains WPAD searches.
func (d *Dialer) searchDomains() []string {
	if d.hooks != nil && d.hooks.searchDomains != nil {
		return d.hooks.searchDomains()
	}
	return sysproxy.SearchDomains()
}

// decidePAC evaluates script for u and fills dec; false (with dec.Reason
// saying why) when the script gave no usable answer.
func (d *Dialer) decidePAC(ctx context.Context, script *pac.Script, pacURL string, u *url.URL, dec *Decision) bool {
	res, err := script.FindProxy(ctx, d.pacEnv(), u)
	if err != nil {
		dec.Reason = fmt.Sprintf("PAC %s: %v", proxyurl.RedactString(pacURL), err)
		return false
	}
	proxies, skipped := pac.ParseResult(res)
	if len(proxies) == 0 {
		dec.Reason = fmt.Sprintf("PAC %s returned %q: no usable entry", proxyurl.RedactString(pacURL), res)
		return false
	}
	dec.Proxies, dec.PAC = proxies, proxyurl.RedactString(pacURL)
	dec.Reason = fmt.Sprintf("FindProxyForURL returned %q", res)
	if len(skipped) > 0 {
		dec.Reason += fmt.Sprintf(", unsupported entries skipped: %s", strings.Join(skipped, ", "))
	}
	return true
}

// isLoopback reports whether host is localhost (or a name under
// .localhost) or a loopback address.
func isLoopback(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// withScheme copies p with http as the scheme when it has none.
func withScheme(p *url.URL) *url.URL {
	if p == nil {
		return nil
	}
	c := *p
	if c.Scheme == "" {
		c.Scheme = "http"
	}
	return &c
}

// redactUser prints u without its userinfo.
func redactUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// canFailOver reports whether a dial error means the proxy could not be
// reached, so the next candidate may be tried: no answer came from it (no
// HTTP status) and the caller's context is still alive.
func canFailOver(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pe *ProxyError
	if errors.As(err, &pe) {
		return pe.StatusCode == 0 && !errors.Is(pe.Err, errSOCKSAnswered)
	}
	return true
}

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
