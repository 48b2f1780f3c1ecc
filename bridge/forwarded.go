// Parsing X-Forwarded-For and Forwarded (RFC 7239) into the hops they
// name, for clientaddr.go's walk from the right.

package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxForwardedHops bounds the hops kept from one request's forwarding
// headers: only the rightmost ones can matter, since the walk stops at the
// first untrusted hop.
const maxForwardedHops = 64

// ErrForwardedHeader is wrapped by the error for an X-Forwarded-For or
// Forwarded header that does not parse.
var ErrForwardedHeader = errors.New("bridge: malformed forwarding header")

// hop is one address named by a forwarding header: an IP with an optional
// port, or an RFC 7239 obfuscated identifier or "unknown" (then addr is
// invalid and name holds it).
type hop struct {
	addr netip.Addr
	port uint16 // 0 when absent or obfuscated
	name string // the identifier when addr is not valid
}

// String returns the hop in log form: "ip:port", a bare IP when no port
// is known, or the identifier.
func (h hop) String() string {
	if !h.addr.IsValid() {
		return h.name
	}
	if h.port == 0 {
		return h.addr.String()
	}
	return netip.AddrPortFrom(h.addr, h.port).String()
}

// rawHop is one entry of a forwarding header, parsed only when the walk
// from the right reaches it: garbage a client put on the left must not
// hide the address a trusted proxy appended on the right. err is set for
// the place where a Forwarded line stopped parsing.
type rawHop struct {
	text string
	err  error
}

// keepHop appends h, dropping the oldest hop beyond maxForwardedHops.
func keepHop(hops []rawHop, h rawHop) []rawHop {
	if len(hops) == maxForwardedHops {
		copy(hops, hops[1:])
		hops = hops[:len(hops)-1]
	}
	return append(hops, h)
}

// splitXFF returns the entries of X-Forwarded-For header lines in order
// (the lines are one comma-separated list); empty entries are skipped.
func splitXFF(lines []string) []rawHop {
	var hops []rawHop
	for _, line := range lines {
		for item := range strings.SplitSeq(line, ",") {
			if item = strings.TrimSpace(item); item != "" {
				hops = keepHop(hops, rawHop{text: item})
			}
		}
	}
	return hops
}

// splitForwarded returns the for= value of each element of Forwarded
// header lines (RFC 7239 section 4) in order; an element without for=
// counts as "unknown". Parameter names are case-insensitive; values are
// tokens or quoted strings with backslash escapes. A line that stops
// parsing keeps its elements before that point, then an entry holding
// the error.
func splitForwarded(lines []string) []rawHop {
	var hops []rawHop
	for _, line := range lines {
		p := fwdParser{s: line}
		for !p.done() {
			node, err := p.element()
			if err != nil {
				hops = keepHop(hops, rawHop{err: fmt.Errorf("in the Forwarded header: %w", err)})
				break
			}
			if node != nil {
				hops = keepHop(hops, rawHop{text: *node})
			}
		}
	}
	return hops
}

// parseHop parses a raw entry: lax for X-Forwarded-For's looser grammar.
func parseHop(r rawHop, lax bool) (hop, error) {
	if r.err != nil {
		return hop{}, fmt.Errorf("%w: %w", ErrForwardedHeader, r.err)
	}
	h, err := parseNode(r.text, lax)
	if err != nil {
		return hop{}, fmt.Errorf("%w: node %q: %w", ErrForwardedHeader, clip(r.text), err)
	}
	return h, nil
}

// fwdParser walks one Forwarded header line.
type fwdParser struct {
	s string
	i int
}

func (p *fwdParser) done() bool { return p.i >= len(p.s) }

func (p *fwdParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// element parses one forwarded-element and the comma after it. It returns
// the for= value ("unknown" when the element has none) or nil for an empty
// list member.
func (p *fwdParser) element() (*string, error) {
	var node *string
	pairs := 0
	for {
		p.skipSpace()
		if p.done() || p.s[p.i] == ',' {
			break
		}
		if p.s[p.i] == ';' {
			p.i++
			continue
		}
		name := p.token()
		if name == "" {
			return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
		}
		p.skipSpace()
		if p.done() || p.s[p.i] != '=' {
			return nil, fmt.Errorf("parameter %q without a value", clip(name))
		}
		p.i++
		p.skipSpace()
		value, err := p.value()
		if err != nil {
			return nil, err
		}
		pairs++
		if strings.EqualFold(name, "for") {
			if node != nil {
				return nil, errors.New("two for= parameters in one element")
			}
			node = &value
		}
	}
	if !p.done() {
		p.i++ // the comma
	}
	if pairs == 0 {
		return nil, nil
	}
	if node == nil {
		unknown := "unknown"
		node = &unknown
	}
	return node, nil
}

// token reads an RFC 7230 token.
func (p *fwdParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted string.
func (p *fwdParser) value() (string, error) {
	if p.done() {
		return "", errors.New("missing value at the end")
	}
	if p.s[p.i] != '"' {
		v := p.token()
		if v == "" {
			return "", fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.done() {
				return "", errors.New("unterminated quoted string")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", fmt.Errorf("control character %#x in a quoted string", c)
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated quoted string")
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode parses an RFC 7239 node: IPv4, "[IPv6]", "unknown" or an
// obfuscated "_id", each with an optional ":port" (a number or "_id").
// With lax (X-Forwarded-For), a bare IPv6 address without brackets is
// accepted too.
func parseNode(s string, lax bool) (hop, error) {
	if lax {
		if a, err := netip.ParseAddr(s); err == nil {
			return ipHop(a, 0)
		}
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hop{}, errors.New("unclosed '['")
		}
		host, port = s[1:end], s[end+1:]
		if port != "" && port[0] != ':' {
			return hop{}, errors.New("text after ']'")
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return hop{}, errors.New("not an IPv6 address in brackets")
		}
		return withPort(a, "", strings.TrimPrefix(port, ":"))
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return hop{}, errors.New("empty port")
		}
	}
	switch {
	case strings.EqualFold(host, "unknown"):
		return withPort(netip.Addr{}, "unknown", port)
	case isObfuscated(host):
		return withPort(netip.Addr{}, host, port)
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return hop{}, errors.New("not an IPv4 address, [IPv6], unknown or _obfuscated")
	}
	return withPort(a, "", port)
}

// withPort completes a hop with an RFC 7239 node-port: a decimal port or
// an obfuscated one (which leaves the port unknown).
func withPort(a netip.Addr, name, port string) (hop, error) {
	if port == "" || isObfuscated(port) {
		if a.IsValid() {
			return ipHop(a, 0)
		}
		return hop{name: name}, nil
	}
	if len(port) > 5 {
		return hop{}, errors.New("bad port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return hop{}, errors.New("bad port")
	}
	if !a.IsValid() {
		return hop{name: name}, nil
	}
	return ipHop(a, uint16(n))
}

func ipHop(a netip.Addr, port uint16) (hop, error) {
	if a.Zone() != "" {
		return hop{}, errors.New("IPv6 zone not allowed")
	}
	return hop{addr: a.Unmap(), port: port}, nil
}

// isObfuscated reports whether s is an RFC 7239 obfnode/obfport:
// "_" followed by letters, digits, '.', '_' or '-'.
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// clip shortens attacker-controlled text for error messages.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
