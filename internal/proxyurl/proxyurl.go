// Package proxyurl holds the small URL rules that proxy discovery, PAC
// results and the Dialer's messages share: building a proxy URL from a
// host and port given apart, the ws-to-http scheme mapping, and redaction.
package proxyurl

import (
	"net"
	"net/url"
	"strings"
)

// FromHostPort builds a proxy URL from a scheme and a host and port given
// separately (port 0 or "" means none), or nil when host is empty. host
// may carry its own scheme ("http://proxy"), which wins ("socks" meaning
// socks5h), and IPv6 literals may come with or without brackets.
func FromHostPort(scheme, host, port string) *url.URL {
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

// HTTPScheme returns a copy of u with ws mapped to http and wss to https,
// the only schemes proxy functions written for net/http understand.
func HTTPScheme(u *url.URL) *url.URL {
	m := *u
	switch u.Scheme {
	case "ws":
		m.Scheme = "http"
	case "wss":
		m.Scheme = "https"
	}
	return &m
}

// Redact formats a URL for messages with its password hidden; nil, which
// stands for a direct connection in proxy lists, prints as "direct".
func Redact(u *url.URL) string {
	if u == nil {
		return "direct"
	}
	return u.Redacted()
}

// RedactString is Redact for a URL held as a string. A string that does
// not parse prints as "(invalid URL)", since it may hold a password.
func RedactString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return Redact(u)
}

// MatchGlob matches s against a shell pattern where * is any run of
// characters and ? any one; everything else is literal. It is the
// pattern language of PAC's shExpMatch and of OS proxy exceptions.
func MatchGlob(pattern, s string) bool {
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
