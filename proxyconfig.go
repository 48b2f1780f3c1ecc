package wsproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

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
//  3. The operating system's settings, where this platform provides a
//     look-up (osProxy is nil otherwise).
//  4. A direct connection.

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
	secure := u.Scheme == "wss" || u.Scheme == "https"
	names := []string{"ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}
	if secure {
		names = []string{"wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}
	}
	var value, from string
	for _, name := range names {
		if value = getenv(name); value != "" {
			if name == "HTTP_PROXY" && getenv("REQUEST_METHOD") != "" {
				return nil, true, errors.New("refusing to use HTTP_PROXY value in CGI environment; see golang.org/s/cgihttpproxy")
			}
			from = name
			break
		}
	}
	if value == "" {
		return nil, false, nil
	}
	// httpproxy ignores a value it cannot parse and goes direct; say so
	// instead. The value is not quoted: it may hold a password.
	if err := checkProxyValue(value); err != nil {
		return nil, true, fmt.Errorf("invalid proxy URL in %s: %w", from, err)
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
	return proxy, true, err
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

// osProxy looks up the operating system's proxy settings for u. Per-OS
// files set it in init; nil means this platform has no look-up. It returns
// nil for a direct connection.
var osProxy func(ctx context.Context, u *url.URL) (*url.URL, error)

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

// proxyFor decides the proxy for target URL u (ws or wss scheme, or http or
// https for raw tunnels). A nil URL means direct.
func (d *Dialer) proxyFor(ctx context.Context, u *url.URL) (*url.URL, error) {
	hu := httpSchemeURL(u)
	if d.Proxy != nil {
		req := (&http.Request{Method: http.MethodGet, URL: hu, Host: hu.Host, Header: http.Header{}}).WithContext(ctx)
		return d.Proxy(req)
	}
	getenv := d.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if p, configured, err := proxyFromEnv(getenv, u); configured {
		return p, err
	}
	if osProxy != nil && !d.ignoreOS {
		return osProxy(ctx, hu)
	}
	return nil, nil
}

// redact formats a proxy URL for messages with its password hidden.
func redact(u *url.URL) string {
	if u == nil {
		return "direct"
	}
	return u.Redacted()
}
