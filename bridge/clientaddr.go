// The client's real address: computed once per request from the socket
// (already the PROXY header's source when the Listener reads one) and the
// forwarding headers of trusted proxies, then carried in the request's
// context to logs, Stats events, token resolvers and the target's PROXY
// header.

package bridge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// HeaderForwarded selects RFC 7239's Forwarded header in
// Handler.ClientAddrHeader.
const HeaderForwarded = "Forwarded"

type clientAddrKey struct{}

// clientAddr is the result of the one computation per request.
type clientAddr struct {
	str string         // for logs: "ip:port", a bare IP, "_obfuscated", "unknown", "unix:PATH"
	ap  netip.AddrPort // valid when the client's IP is known (port 0 when not)
}

// ClientAddr returns the client's real address for a request the Handler
// serves, from the request's context (TargetResolver.Resolve and
// Handler.Static receive it): "ip:port"; a bare IP when a forwarding
// header gave no port; an RFC 7239 obfuscated identifier ("_hidden") or
// "unknown" when a trusted proxy did not disclose it or its header was
// malformed; "unix:PATH" for a client of a Unix-socket listener. It is
// the address in the Handler's log lines and in ConnInfo.Remote. Outside
// a Handler's request it returns "".
func ClientAddr(ctx context.Context) string {
	ca, _ := ctx.Value(clientAddrKey{}).(clientAddr)
	return ca.str
}

// ClientAddrPort returns the client's real IP and port (the port is 0
// when a forwarding header named only the IP). ok is false when the IP is
// unknown (see ClientAddr) or ctx is not a Handler's request context.
func ClientAddrPort(ctx context.Context) (ap netip.AddrPort, ok bool) {
	ca, _ := ctx.Value(clientAddrKey{}).(clientAddr)
	return ca.ap, ca.ap.IsValid()
}

// ParseTrustedProxies parses CIDR prefixes ("10.0.0.0/8", "fd00::/8") and
// single addresses ("192.0.2.7", a /32 or /128) for
// Handler.TrustedProxies and ProxyProtocolPolicy.TrustedProxies. IPv4-mapped
// IPv6 prefixes are converted to IPv4 ones. It fails on the first entry
// that is neither, naming it.
func ParseTrustedProxies(list ...string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix or an IP address: %w", s, err)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix or an IP address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, unmapPrefix(p).Masked())
	}
	return out, nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96).
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// trusted reports whether a is inside one of the prefixes.
func trusted(prefixes []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// withClientAddr computes the request's client address and returns the
// request with it in its context. It is the one place that decides it.
func (h *Handler) withClientAddr(r *http.Request) *http.Request {
	ca, err := h.clientAddr(r)
	if err != nil {
		h.logger().Debug("bridge: forwarding header not believed", "remote", ca.str, "via", r.RemoteAddr, "err", err)
	}
	return r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, ca))
}

// clientAddr applies TrustedProxies and ClientAddrHeader (see their docs)
// to r. An error names a malformed header; the address is then "unknown"
// unless a hop to the right of the bad one was already untrusted.
func (h *Handler) clientAddr(r *http.Request) (clientAddr, error) {
	peer, isUnix := peerAddr(r)
	if !isUnix && !peer.IsValid() {
		return clientAddr{str: r.RemoteAddr}, nil
	}
	ca := clientAddr{str: r.RemoteAddr, ap: peer}
	if isUnix {
		ca.str = unixPeerString(r)
	}
	if len(h.TrustedProxies) == 0 || !isUnix && !trusted(h.TrustedProxies, peer.Addr()) {
		return ca, nil
	}
	lax, raw := true, []rawHop(nil)
	switch name := h.ClientAddrHeader; {
	case strings.EqualFold(name, HeaderForwarded):
		lax, raw = false, splitForwarded(r.Header.Values(HeaderForwarded))
	case name == "":
		raw = splitXFF(r.Header.Values("X-Forwarded-For"))
	default:
		raw = splitXFF(r.Header.Values(name))
	}
	// The rightmost untrusted hop is the client; when every hop is
	// trusted, the leftmost one is (a client inside the trusted network).
	for i := len(raw) - 1; i >= 0; i-- {
		hp, err := parseHop(raw[i], lax)
		if err != nil {
			return clientAddr{str: "unknown"}, err
		}
		ca = hopAddr(hp)
		if !hp.addr.IsValid() || !trusted(h.TrustedProxies, hp.addr) {
			break
		}
	}
	return ca, nil
}

func hopAddr(hp hop) clientAddr {
	ca := clientAddr{str: hp.String()}
	if hp.addr.IsValid() {
		ca.ap = netip.AddrPortFrom(hp.addr, hp.port)
	}
	return ca
}

// peerAddr returns the immediate peer's address, or isUnix for a client
// of a Unix-socket listener (whose RemoteAddr is empty or "@").
func peerAddr(r *http.Request) (ap netip.AddrPort, isUnix bool) {
	if _, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); ok {
		return netip.AddrPort{}, true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), false
}

func unixPeerString(r *http.Request) string {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); ok && la.Name != "" {
		return "unix:" + la.Name
	}
	return "unix"
}

// remoteOf returns the client address computed for r by withClientAddr,
// or r.RemoteAddr for a request that did not pass through it.
func remoteOf(r *http.Request) string {
	if s := ClientAddr(r.Context()); s != "" {
		return s
	}
	return r.RemoteAddr
}
