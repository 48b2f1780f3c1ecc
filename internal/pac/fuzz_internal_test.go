package pac

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParsePACResult checks ParseResult on any string a PAC script may
// return: entries are handled one by one, each non-blank entry gives
// exactly one outcome (a proxy, DIRECT, or a skipped entry reported as
// written), every proxy is a URL that survives printing and parsing, with
// the scheme its keyword names and a host and a port in 1-65535, and a
// plain "KEYWORD host:port" entry is always taken as written.
func FuzzParsePACResult(f *testing.F) {
	for _, s := range []string{
		"PROXY a.example:3128; HTTPS b.example:443; SOCKS5 c.example:1080; DIRECT",
		"  proxy a:1 ;;direct ", "SOCKS s:1080", "SOCKS4 old:1080; PROXY [::1]:8080", "PROXY noport; QUIC q:443", "",
		"PROXY http://a:1", "HTTPS http://a:1/", "PROXY socks5://a:1", "PROXY ftp://a:1", "DIRECT a:1", "DIRECT;DIRECT",
		"PROXY a:0", "PROXY a:65536", "PROXY a:x", "PROXY a/b:1", "PROXY user@a:1", "PROXY a:1?q", "PROXY [fe80::1%eth0]:1",
		"PROXY 10.0.0.1:8080\r\nDIRECT", "PROXY a:\t1", "PROXY \x00:1", "PROXY a:+1", "PROXY [::1]x:1", "PROXY :1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, res string) {
		proxies, skipped := ParseResult(res)

		// Entry by entry: the result is the concatenation of the results
		// of the entries parsed alone, and each gives one outcome.
		var wantProxies []*url.URL
		var wantSkipped []string
		for _, entry := range strings.Split(res, ";") {
			ps, sk := ParseResult(entry)
			fields := strings.Fields(entry)
			if len(ps)+len(sk) != min(len(fields), 1) {
				t.Fatalf("entry %q of %q: %d proxies and %d skipped", entry, res, len(ps), len(sk))
			}
			wantProxies, wantSkipped = append(wantProxies, ps...), append(wantSkipped, sk...)
			if len(fields) == 0 {
				continue
			}
			if len(sk) == 1 {
				if sk[0] != strings.TrimSpace(entry) {
					t.Fatalf("entry %q reported skipped as %q", entry, sk[0])
				}
				if simple, _, _ := plainPACEntry(fields); simple {
					t.Fatalf("plain entry %q skipped", entry)
				}
				continue
			}
			checkPACProxy(t, entry, fields, ps[0])
		}
		if !slices.EqualFunc(proxies, wantProxies, sameURL) || !slices.Equal(skipped, wantSkipped) {
			t.Fatalf("%q: %v %q, entry by entry %v %q", res, proxies, skipped, wantProxies, wantSkipped)
		}
	})
}

func sameURL(a, b *url.URL) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// checkPACProxy checks what one non-blank entry (fields) gave: nil only
// for a lone DIRECT, otherwise a well-formed proxy URL.
func checkPACProxy(t *testing.T, entry string, fields []string, p *url.URL) {
	t.Helper()
	kind := strings.ToUpper(fields[0])
	if p == nil {
		if kind != "DIRECT" || len(fields) != 1 {
			t.Fatalf("entry %q taken as DIRECT", entry)
		}
		return
	}
	scheme := map[string]string{"PROXY": "http", "HTTP": "http", "HTTPS": "https", "SOCKS": "socks5h", "SOCKS5": "socks5h"}[kind]
	if scheme == "" || len(fields) != 2 {
		t.Fatalf("entry %q gave proxy %v", entry, p)
	}
	if p.Scheme != scheme {
		t.Fatalf("entry %q gave scheme %q, want %q", entry, p.Scheme, scheme)
	}
	if p.User != nil || p.Opaque != "" || p.Path != "" || p.RawQuery != "" || p.Fragment != "" || p.ForceQuery {
		t.Fatalf("entry %q gave %#v, more than scheme and host", entry, p)
	}
	host, port := p.Hostname(), p.Port()
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || port[0] < '0' || port[0] > '9' {
		t.Fatalf("entry %q gave port %q", entry, port)
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("/?#@[]\\", r) }) {
		t.Fatalf("entry %q gave host %q", entry, host)
	}
	if strings.Contains(host, ":") {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			t.Fatalf("entry %q gave host %q, not an IPv6 address", entry, host)
		}
	}
	back, err := url.Parse(p.String())
	if err != nil || back.Scheme != p.Scheme || back.Host != p.Host || back.User != nil || back.Path != "" {
		t.Fatalf("entry %q gave %q, which parses back as %#v (%v)", entry, p, back, err)
	}
	if !strings.Contains(fields[1], strings.Trim(host, "[]")) {
		t.Fatalf("entry %q gave host %q", entry, host)
	}
	if simple, h, pt := plainPACEntry(fields); simple && (host != h || port != pt) {
		t.Fatalf("entry %q gave %q, want host %q port %q", entry, p, h, pt)
	}
}

// plainPACEntry reports whether fields are a known keyword and a plain
// host:port (a name of letters, digits, dots, dashes and underscores, or an
// IP address, IPv6 in brackets; a port without leading zeros), and returns
// that host and port.
func plainPACEntry(fields []string) (ok bool, host, port string) {
	if len(fields) != 2 {
		return false, "", ""
	}
	switch strings.ToUpper(fields[0]) {
	case "PROXY", "HTTP", "HTTPS", "SOCKS", "SOCKS5":
	default:
		return false, "", ""
	}
	i := strings.LastIndexByte(fields[1], ':')
	if i < 0 {
		return false, "", ""
	}
	host, port = fields[1][:i], fields[1][i+1:]
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || port[0] == '0' || strings.Trim(port, "0123456789") != "" {
		return false, "", ""
	}
	if h, ok := strings.CutPrefix(host, "["); ok {
		h, ok = strings.CutSuffix(h, "]")
		ip, err := netip.ParseAddr(h)
		return ok && err == nil && ip.Is6() && ip.Zone() == "", h, port
	}
	if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
		return false, "", ""
	}
	return true, host, port
}
