package pac

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// ParseResult turns "PROXY a:1; HTTPS b:2; SOCKS5 c:3; DIRECT" into
// proxy URLs (nil for DIRECT). PROXY is an http proxy, HTTPS an https one,
// SOCKS and SOCKS5 a SOCKS5 proxy that resolves names itself (socks5h, as
// browsers do for SOCKS5). SOCKS4 and unknown entries are skipped and
// returned in skipped, as are entries without a usable host and port
// (1-65535) and those whose URL scheme contradicts the keyword.
func ParseResult(res string) (proxies []*url.URL, skipped []string) {
	for _, entry := range strings.Split(res, ";") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		kind := strings.ToUpper(fields[0])
		if kind == "DIRECT" && len(fields) == 1 {
			proxies = append(proxies, nil)
			continue
		}
		scheme := map[string]string{"PROXY": "http", "HTTP": "http", "HTTPS": "https", "SOCKS": "socks5h", "SOCKS5": "socks5h"}[kind]
		if scheme == "" || len(fields) != 2 {
			skipped = append(skipped, strings.TrimSpace(entry))
			continue
		}
		p := proxyurl.FromHostPort(scheme, fields[1], "")
		// Found by FuzzParsePACResult: a URL scheme in the entry overrode
		// its keyword ("PROXY ftp://a:1", "HTTPS http://a:1"), and hosts
		// and ports no dial can use (port 0 or 65536, "a/b", "user@a")
		// were taken. Such entries are skipped.
		if p == nil || p.Scheme != scheme || !usableHostPort(p) {
			skipped = append(skipped, strings.TrimSpace(entry))
			continue
		}
		proxies = append(proxies, p)
	}
	return proxies, skipped
}

// usableHostPort reports whether p.Host is a host (an IP address when it
// has a colon) and a port in 1-65535 that print and parse back unchanged.
func usableHostPort(p *url.URL) bool {
	if n, err := strconv.ParseUint(p.Port(), 10, 16); err != nil || n == 0 {
		return false
	}
	if h := p.Hostname(); strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return false
		}
	}
	back, err := url.Parse(p.String())
	return err == nil && back.Host == p.Host && back.User == nil && back.Path == "" && back.Hostname() != ""
}
