package bridge

import (
	"fmt"
	"strings"
)

// FlashPolicyRequest is what Adobe Flash (and Flash-based WebSocket
// emulators such as web-socket-js) sends on a fresh connection before it
// opens a socket: this text followed by a NUL byte.
const FlashPolicyRequest = "<policy-file-request/>"

// FlashPolicy is the cross-domain policy answered to FlashPolicyRequest on
// the bridge's own port, so Flash clients need no separate policy server
// on port 843. The zero value allows every domain to every port, the
// answer websockify gave:
//
//	<cross-domain-policy><allow-access-from domain="*" to-ports="*" /></cross-domain-policy>
//
// followed by a NUL byte. The policy only governs Flash; browsers that
// speak WebSocket natively never ask for it.
type FlashPolicy struct {
	// Domains are the allowed origins' host names, one allow-access-from
	// element each; "*" and a leading "*." wildcard are allowed. Empty
	// means "*". Letters, digits, '.', '-', '*' and ':' only.
	Domains []string
	// Ports is the to-ports value: "*" (the default when empty), a port,
	// a range ("5900-5910") or a comma-separated list of those. Digits,
	// ',', '-' and '*' only.
	Ports string
}

// Bytes returns the exact answer: the policy XML and a terminating NUL.
// It fails when a domain or the ports hold a character outside their
// grammar (which also keeps quotes and markup out of the XML).
func (p *FlashPolicy) Bytes() ([]byte, error) {
	domains, ports := []string{"*"}, "*"
	if p != nil && len(p.Domains) > 0 {
		domains = p.Domains
	}
	if p != nil && p.Ports != "" {
		ports = p.Ports
	}
	if !onlyChars(ports, "0123456789,-*") {
		return nil, fmt.Errorf("flash policy: bad to-ports %q: want \"*\", ports, ranges and commas", ports)
	}
	var b strings.Builder
	b.WriteString("<cross-domain-policy>")
	for _, d := range domains {
		if d == "" || !onlyChars(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*:") {
			return nil, fmt.Errorf("flash policy: bad domain %q", d)
		}
		fmt.Fprintf(&b, `<allow-access-from domain="%s" to-ports="%s" />`, d, ports)
	}
	b.WriteString("</cross-domain-policy>\x00")
	return []byte(b.String()), nil
}

func onlyChars(s, allowed string) bool {
	for _, c := range s {
		if !strings.ContainsRune(allowed, c) {
			return false
		}
	}
	return true
}
