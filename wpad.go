package wsproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

// WPAD (Web Proxy Auto-Discovery) by DNS: when the OS settings say
// "detect automatically", look for http://wpad.<domain>/wpad.dat from the
// machine's DNS domain upwards, stopping at the registrable domain (the
// public suffix plus one label). Going higher, to wpad.co.uk or wpad.com,
// would let whoever registered that name serve every machine's proxy
// settings: the classic WPAD hijack. DHCP option 252 is not consulted.

const (
	// wpadCacheTTL is how long a found script, or the failure to find
	// one, is remembered.
	wpadCacheTTL     = 5 * time.Minute
	wpadFailCacheTTL = time.Minute
	// wpadProbeTimeout bounds each candidate's fetch.
	wpadProbeTimeout = 2 * time.Second
)

type wpadResult struct {
	script *pacScript
	url    string
}

var wpadCache = newOnceCache[*wpadResult](wpadCacheTTL, wpadFailCacheTTL)

// wpadSearchDomains returns the machine's DNS domains, most specific
// first. Per-OS files may replace it; the default reads /etc/resolv.conf
// (domain and search lines) and the host name's domain part.
var wpadSearchDomains = func() []string {
	var out []string
	if f, err := os.Open("/etc/resolv.conf"); err == nil {
		out = append(out, resolvConfDomains(f)...)
		f.Close()
	}
	if h, err := os.Hostname(); err == nil {
		if _, dom, ok := strings.Cut(h, "."); ok {
			out = append(out, dom)
		}
	}
	return out
}

// resolvConfDomains reads the domain and search lines of a resolv.conf.
func resolvConfDomains(f io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || (fields[0] != "domain" && fields[0] != "search") {
			continue
		}
		out = append(out, fields[1:]...)
	}
	return out
}

// wpadCandidates lists the WPAD URLs to try for domains, in order, never
// above a domain's registrable domain; domains that are a public suffix
// themselves, or invalid, give none.
func wpadCandidates(domains []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range domains {
		d = strings.ToLower(strings.Trim(strings.TrimSpace(d), "."))
		if d == "" || strings.ContainsAny(d, "/:@ ") {
			continue
		}
		top, err := publicsuffix.EffectiveTLDPlusOne(d)
		if err != nil {
			continue // d is a public suffix, or not a domain
		}
		for {
			u := "http://wpad." + d + "/wpad.dat"
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
			if d == top {
				break
			}
			_, d, _ = strings.Cut(d, ".")
		}
	}
	return out
}

// wpad finds the WPAD script for this machine's domains, from the cache
// when it can.
func (d *Dialer) wpad(ctx context.Context) (*pacScript, string, error) {
	domains := wpadSearchDomains
	if d.hooks != nil && d.hooks.searchDomains != nil {
		domains = d.hooks.searchDomains
	}
	cands := wpadCandidates(domains())
	if len(cands) == 0 {
		return nil, "", errors.New("no DNS search domain to look for a WPAD script in")
	}
	r, err := wpadCache.get(ctx, strings.Join(cands, " "), func(ctx context.Context) (*wpadResult, error) {
		var tried []string
		for _, c := range cands {
			pctx, cancel := context.WithTimeout(ctx, wpadProbeTimeout)
			src, err := d.fetchPAC(pctx, c)
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				tried = append(tried, fmt.Sprintf("%s: %v", c, err))
				continue
			}
			s, err := compilePAC(c, src)
			if err != nil {
				tried = append(tried, fmt.Sprintf("%s: %v", c, err))
				continue
			}
			return &wpadResult{script: s, url: c}, nil
		}
		return nil, fmt.Errorf("no WPAD script found (%s)", strings.Join(tried, "; "))
	})
	if err != nil {
		return nil, "", err
	}
	return r.script, r.url, nil
}
