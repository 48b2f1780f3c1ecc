package bridge

import (
	"strings"
	"testing"
)

// checkHops holds for any header: the list is bounded, every entry either
// parses or fails with a short error, and a parsed address prints in a
// form that parses back to itself.
func checkHops(t *testing.T, header string, hops []rawHop, lax bool) {
	t.Helper()
	if len(hops) > maxForwardedHops {
		t.Fatalf("%q: %d hops kept", header, len(hops))
	}
	for _, r := range hops {
		h, err := parseHop(r, lax)
		if err != nil {
			if len(err.Error()) > 512 { // clip keeps 64 bytes, %q may make each 4
				t.Fatalf("%q: error not bounded: %d bytes", header, len(err.Error()))
			}
			continue
		}
		if !h.addr.IsValid() {
			if h.name != "unknown" && !isObfuscated(h.name) {
				t.Fatalf("%q: name %q is neither unknown nor obfuscated", header, h.name)
			}
			continue
		}
		if h.addr.Zone() != "" || h.addr.Is4In6() {
			t.Fatalf("%q: address %v kept a zone or a mapping", header, h.addr)
		}
		back, err := parseNode(h.String(), true)
		if err != nil || back != h {
			t.Fatalf("%q: %v printed as %q parses back to %v, %v", header, h, h.String(), back, err)
		}
		if !lax && h.addr.Is6() && !strings.Contains(r.text, "[") {
			t.Fatalf("%q: bare IPv6 %q accepted in Forwarded", header, r.text)
		}
	}
}

// FuzzForwardedHeaders: the X-Forwarded-For and Forwarded parsers never
// panic, keep bounded lists and only produce addresses that round-trip.
func FuzzForwardedHeaders(f *testing.F) {
	for _, s := range []string{
		"203.0.113.9", "1.1.1.1, 203.0.113.9", "[2001:db8::1]:4711, 2001:db8::7", "unknown, _hidden",
		`for=192.0.2.60;proto=http;by=203.0.113.43`, `For="[2001:db8:cafe::17]:4711"`, `for=_x, for=unknown`,
		`ext="a\",for=6.6.6.6";for=198.51.100.17`, `for="1.2.3.4`, `for="198.51.100.17:_p"`, ";;,,", "fe80::1%eth0",
		"::ffff:1.2.3.4", `for="[::ffff:1.2.3.4]:80"`, strings.Repeat("1.2.3.4,", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		checkHops(t, header, splitXFF([]string{header}), true)
		checkHops(t, header, splitForwarded([]string{header}), false)
	})
}
