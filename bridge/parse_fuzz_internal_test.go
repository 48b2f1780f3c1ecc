package bridge

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// FuzzChooseSubprotocol: any Sec-WebSocket-Protocol header gives binary
// when "binary" is one of its items, else base64 when offered, else an
// error (or no subprotocol when the header has no items).
func FuzzChooseSubprotocol(f *testing.F) {
	for _, s := range []string{"", "binary", "foo, binary", " base64 ,foo", "foo,,bar", ",", "BINARY"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		h := http.Header{}
		h.Set("Sec-WebSocket-Protocol", header)
		offer := offeredSubprotocols(h)
		got, err := chooseSubprotocol(offer)
		hasBinary, hasBase64 := false, false
		for _, item := range strings.Split(header, ",") {
			switch strings.ToLower(strings.TrimSpace(item)) {
			case "binary":
				hasBinary = true
			case "base64":
				hasBase64 = true
			}
		}
		switch {
		case len(offer) == 0:
			if got != "" || err != nil {
				t.Fatalf("empty offer %q: %q, %v", header, got, err)
			}
		case hasBinary:
			if got != SubprotocolBinary {
				t.Fatalf("%q: %q, %v", header, got, err)
			}
		case hasBase64:
			if got != SubprotocolBase64 {
				t.Fatalf("%q: %q, %v", header, got, err)
			}
		default:
			if err == nil {
				t.Fatalf("%q: accepted %q", header, got)
			}
		}
	})
}

// FuzzParseTargets: the parsers of token lines, Redis values and
// allow-list rules never panic, and what they accept is well formed.
func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{"a: 127.0.0.1:5900", `{"host": "h:1"}`, "10.0.0.0/8:1-2,3", "[::1]/128:*", "x:\t[::1]:1", "::1/128:5900"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tok, target, ok := splitTokenLine(s); ok && (tok == "" || target == "") {
			t.Fatalf("splitTokenLine(%q) = %q, %q", s, tok, target)
		}
		if v, err := parseRedisTarget(s); err == nil {
			if _, _, err := net.SplitHostPort(v); err != nil {
				t.Fatalf("parseRedisTarget(%q) = %q, not host:port", s, v)
			}
		}
		if a, err := ParseAllowList(s); err == nil {
			for _, r := range a.rules {
				if r.lo == 0 || r.lo > r.hi || !r.prefix.IsValid() {
					t.Fatalf("ParseAllowList(%q): bad rule %+v", s, r)
				}
			}
		}
		_, _ = ParseRedisSource(s)
	})
}
