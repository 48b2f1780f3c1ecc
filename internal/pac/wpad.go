package pac

import (
	"context"
	"errors"
	"fmt"
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
	// WPADCacheTTL is how long a found script, or the failure to find
	// one, is remembered.
	WPADCacheTTL = 5 * time.Minute
	WPADFailTTL  = time.Minute
	// ProbeTimeout bounds each candidate's fetch.
	ProbeTimeout = 2 * time.Second
)

type wpadResult struct {
	script *Script
	url    string
}

var wpadResults = newOnceCache[cacheKey, *wpadResult](WPADCacheTTL, WPADFailTTL)

// Candidates lists the WPAD URLs to try for domains, in order, never
// above a domain's registrable domain; domains that are a public suffix
// themselves, or invalid, give none.
func Candidates(domains []string) []string {
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

// WPAD finds the WPAD script for domains (most specific first; see
// Candidates), trying each candidate URL in turn within ProbeTimeout, and
// returns the first that fetches and compiles, with its URL. Results,
// failures included, are cached by candidate list and Fetcher settings
// (WPADCacheTTL, WPADFailTTL).
func (f Fetcher) WPAD(ctx context.Context, domains []string) (*Script, string, error) {
	cands := Candidates(domains)
	if len(cands) == 0 {
		return nil, "", errors.New("no DNS search domain to look for a WPAD script in")
	}
	r, err := wpadResults.get(ctx, f.key(strings.Join(cands, " ")), func(ctx context.Context) (*wpadResult, error) {
		var tried []string
		for _, c := range cands {
			pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
			src, err := f.Fetch(pctx, c)
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				tried = append(tried, fmt.Sprintf("%s: %v", c, err))
				continue
			}
			s, err := Compile(c, src)
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
