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
)

// Source says which settings decided the proxy for a URL.
type Source string

// The sources of a Decision, in the order they are consulted.
const (
	SourceDialer      Source = "Dialer.Proxy" // the Dialer's own Proxy function
	SourceEnvironment Source = "environment"  // ws_proxy, https_proxy, ALL_PROXY, NO_PROXY...
	SourceGNOME       Source = "GNOME"        // org.gnome.system.proxy, read with gsettings
	SourceKDE         Source = "KDE"          // kioslaverc's [Proxy Settings]
	SourceMacOS       Source = "macOS"        // scutil --proxy
	SourceWindows     Source = "Windows"      // the user's Internet Settings in the registry
	SourceNone        Source = "none"         // nothing configured: direct
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
	systemCache.invalidate()
	pacCache.invalidate()
	wpadCache.invalidate()
}

// sysHooks replace the machine's answers, for tests (see export_test.go).
type sysHooks struct {
	settings      func(ctx context.Context) (*systemSettings, error)
	lookupIP      func(ctx context.Context, host string) ([]net.IP, error)
	myIPs         func() []net.IP
	now           func() time.Time
	searchDomains func() []string
	pacLimit      time.Duration
	proxyLoopback bool // let OS settings proxy loopback targets
}

// decide implements ProxyForURL.
func (d *Dialer) decide(ctx context.Context, u *url.URL) (Decision, error) {
	dec := Decision{Target: redactURL(u)}
	hu := httpSchemeURL(u)
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
	getenv := d.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	p, from, configured, err := envProxy(getenv, u)
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
	if !d.ignoreOS || (d.hooks != nil && d.hooks.settings != nil) {
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
	}
	dec.Source, dec.Proxies = SourceNone, []*url.URL{nil}
	dec.Reason = "no proxy configured"
	return dec, nil
}

func (d *Dialer) systemSettings(ctx context.Context) (*systemSettings, error) {
	if d.hooks != nil && d.hooks.settings != nil {
		return d.hooks.settings(ctx)
	}
	return systemCache.get(ctx)
}

// decideSystem applies OS settings: WPAD, then the PAC URL, then manual.
func (d *Dialer) decideSystem(ctx context.Context, s *systemSettings, u *url.URL, dec *Decision) {
	dec.Source = s.Source
	var notes []string
	if s.AutoDetect {
		script, pacURL, err := d.wpad(ctx)
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
		script, err := pacCache.get(ctx, d, s.PACURL)
		if err == nil {
			if d.decidePAC(ctx, script, s.PACURL, u, dec) {
				if len(notes) > 0 {
					dec.Reason += " (" + strings.Join(notes, "; ") + ")"
				}
				return
			}
			notes = append(notes, dec.Reason)
		} else {
			notes = append(notes, fmt.Sprintf("PAC %s: %v", redactRaw(s.PACURL), err))
		}
	}
	dec.PAC = ""
	if s.hasManual() {
		p, why := s.proxyForManual(u)
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

// decidePAC evaluates script for u and fills dec; false (with dec.Reason
// saying why) when the script gave no usable answer.
func (d *Dialer) decidePAC(ctx context.Context, script *pacScript, pacURL string, u *url.URL, dec *Decision) bool {
	res, err := script.findProxy(ctx, d.pacEnv(), u)
	if err != nil {
		dec.Reason = fmt.Sprintf("PAC %s: %v", redactRaw(pacURL), err)
		return false
	}
	proxies, skipped := parsePACResult(res)
	if len(proxies) == 0 {
		dec.Reason = fmt.Sprintf("PAC %s returned %q: no usable entry", redactRaw(pacURL), res)
		return false
	}
	dec.Proxies, dec.PAC = proxies, redactRaw(pacURL)
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

// redactURL prints u without its userinfo.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// redactRaw prints a URL string with its password hidden.
func redactRaw(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
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
