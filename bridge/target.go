package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Target is where one connection is relayed.
type Target struct {
	// Network is "tcp" (the default when empty) or "unix".
	Network string
	// Address is host:port for tcp (an IPv6 host in brackets) or the
	// socket's path for unix.
	Address string
	// ServerName is the name checked in the target's certificate when the
	// Handler dials with TLS; empty means the host of Address. Resolvers
	// that resolve host names themselves (AllowList) set it to the name
	// so that Address can carry the checked IP.
	ServerName string
}

func (t Target) network() string {
	if t.Network == "" {
		return "tcp"
	}
	return t.Network
}

// String returns "unix:PATH" for Unix sockets and the address otherwise.
func (t Target) String() string {
	if t.network() == "unix" {
		return "unix:" + t.Address
	}
	return t.Address
}

// TargetResolver decides where a WebSocket request is relayed. Resolve is
// called before the WebSocket handshake, once per request, from many
// goroutines at once. An error refuses the request: an error wrapping
// ErrUnknownToken or ErrNoToken is answered with 404, ErrTargetNotAllowed
// or ErrInvalidToken with 403, anything else with 502; the reason goes to
// the log only. ClientAddr(ctx) gives the client's real address (behind
// trusted proxies, see Handler.TrustedProxies).
type TargetResolver interface {
	Resolve(ctx context.Context, r *http.Request) (Target, error)
}

// Errors a TargetResolver returns.
var (
	// ErrNoToken: the request carries no token (no ?token= parameter, or
	// no Host header with host tokens).
	ErrNoToken = errors.New("bridge: no token in the request")
	// ErrUnknownToken: the token store has no entry for the token.
	ErrUnknownToken = errors.New("bridge: unknown token")
	// ErrTargetNotAllowed: the target is outside the allow-list (or there
	// is no allow-list for dynamic targets).
	ErrTargetNotAllowed = errors.New("bridge: target not allowed")
)

// FixedTarget relays every request to one target: the websockify command
// line's target_addr:target_port or --unix-target. It is trusted as
// configured, without an allow-list.
type FixedTarget Target

// Resolve implements TargetResolver.
func (f FixedTarget) Resolve(context.Context, *http.Request) (Target, error) {
	return Target(f), nil
}

// TokenStore maps a token to a target address "host:port". Lookup returns
// an error wrapping ErrUnknownToken when the token has no entry; other
// errors mean the store could not be asked (a file unreadable, Redis
// down). Implementations must be safe for concurrent use.
type TokenStore interface {
	Lookup(ctx context.Context, token string) (string, error)
}

// TokenResolver resolves the request's token through Store and checks the
// target against Allow. The token is the first "token" query parameter
// (websockify's ?token=), or, with HostToken, the request's Host without
// its port.
//
// Token targets are dynamic, so they are refused unless Allow lets them
// through: a nil Allow refuses every target (no open relay). Use
// AllowAll() only when everyone who can write to the store is trusted.
type TokenResolver struct {
	Store     TokenStore
	HostToken bool
	Allow     *AllowList
}

// Resolve implements TargetResolver.
func (tr *TokenResolver) Resolve(ctx context.Context, r *http.Request) (Target, error) {
	token := ""
	if tr.HostToken {
		token = r.Host
		if h, _, err := net.SplitHostPort(token); err == nil {
			token = h
		}
		token = strings.Trim(token, "[]")
	} else {
		token = r.URL.Query().Get("token")
	}
	if token == "" {
		return Target{}, ErrNoToken
	}
	addr, err := tr.Store.Lookup(ctx, token)
	if err != nil {
		return Target{}, fmt.Errorf("token %s: %w", redactToken(token), err)
	}
	if tr.Allow == nil {
		return Target{}, fmt.Errorf("token %s → %s: %w (no allow-list for token targets)", redactToken(token), addr, ErrTargetNotAllowed)
	}
	t, err := tr.Allow.Check(ctx, addr)
	if err != nil {
		return Target{}, fmt.Errorf("token %s: %w", redactToken(token), err)
	}
	return t, nil
}

// redactToken keeps enough of a token for logs to tell tokens apart
// without revealing it: tokens often act as session credentials.
func redactToken(token string) string {
	const keep = 4
	if len(token) <= keep*2 {
		return strconv.Quote(strings.Repeat("*", len(token)))
	}
	return strconv.Quote(token[:keep] + "…")
}

// AllowList is the set of targets dynamic resolvers may reach: networks
// (CIDR prefixes) and, for each, a set of ports. The zero value allows
// nothing. Host names are resolved once, by Check, and every address they
// resolve to must be allowed; the checked address is what the Handler
// dials, so a DNS answer that changes between check and dial cannot
// redirect the connection.
type AllowList struct {
	rules []allowRule
	// Resolver looks up host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

type allowRule struct {
	prefix netip.Prefix
	lo, hi uint16
}

// AllowAll returns an AllowList that lets every IPv4 and IPv6 target
// through: an open relay for whoever controls the token store.
func AllowAll() *AllowList {
	a, _ := ParseAllowList("0.0.0.0/0:1-65535", "::/0:1-65535")
	return a
}

// ParseAllowList parses rules "CIDR:ports" where ports is a port, a range
// "lo-hi", a comma-separated list of those, or "*" for every port; an IPv6
// CIDR goes in brackets or is split at its last colon ("[::1]/128:5900",
// "::1/128:5900-5999"). A bare address means a single host ("10.0.0.7:22").
func ParseAllowList(rules ...string) (*AllowList, error) {
	a := &AllowList{}
	for _, rule := range rules {
		i := strings.LastIndexByte(rule, ':')
		if i < 0 {
			return nil, fmt.Errorf("bridge: allow rule %q: want CIDR:ports", rule)
		}
		netPart, portPart := rule[:i], rule[i+1:]
		netPart = strings.Replace(strings.Replace(netPart, "[", "", 1), "]", "", 1)
		var p netip.Prefix
		var err error
		if strings.Contains(netPart, "/") {
			p, err = netip.ParsePrefix(netPart)
		} else {
			var ip netip.Addr
			if ip, err = netip.ParseAddr(netPart); err == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bridge: allow rule %q: %w", rule, err)
		}
		p = p.Masked()
		for pr := range strings.SplitSeq(portPart, ",") {
			lo, hi, err := parsePortRange(pr)
			if err != nil {
				return nil, fmt.Errorf("bridge: allow rule %q: %w", rule, err)
			}
			a.rules = append(a.rules, allowRule{prefix: p, lo: lo, hi: hi})
		}
	}
	return a, nil
}

func parsePortRange(s string) (lo, hi uint16, err error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return 1, 65535, nil
	}
	loS, hiS, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(loS, 10, 16)
	if err != nil || l == 0 {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hiS, 10, 16); err != nil || h < l {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return uint16(l), uint16(h), nil
}

// Allowed reports whether ip:port is in the list.
func (a *AllowList) Allowed(ip netip.Addr, port uint16) bool {
	ip = ip.Unmap()
	for _, r := range a.rules {
		if r.prefix.Contains(ip) && port >= r.lo && port <= r.hi {
			return true
		}
	}
	return false
}

// Check resolves addr ("host:port") and returns the Target to dial: the
// first resolved address, provided every resolved address is allowed.
// It fails with an error wrapping ErrTargetNotAllowed otherwise, or with
// the resolver's error.
func (a *AllowList) Check(ctx context.Context, addr string) (Target, error) {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil || port == 0 {
		return Target{}, fmt.Errorf("target %q: bad port", addr)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		res := a.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		if ips, err = res.LookupNetIP(ctx, "ip", host); err != nil {
			return Target{}, fmt.Errorf("target %q: %w", addr, err)
		}
		if len(ips) == 0 {
			return Target{}, fmt.Errorf("target %q: no addresses", addr)
		}
	}
	for _, ip := range ips {
		if !a.Allowed(ip, uint16(port)) {
			return Target{}, fmt.Errorf("target %s (%s): %w", addr, ip, ErrTargetNotAllowed)
		}
	}
	t := Target{Network: "tcp", Address: net.JoinHostPort(ips[0].Unmap().WithZone("").String(), portS)}
	if ips[0].String() != host {
		t.ServerName = host
	}
	return t, nil
}
