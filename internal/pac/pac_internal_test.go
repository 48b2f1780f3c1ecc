package pac

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testPACEnv resolves a few fixed names and pretends to be 10.1.2.3.
func testPACEnv(now time.Time) Env {
	hosts := map[string][]string{
		"intranet.corp.example": {"10.20.30.40"},
		"www.example.com":       {"2001:db8::10", "93.184.216.34"},
		"v6only.example":        {"2001:db8::20"},
	}
	return Env{
		LookupIP: func(ctx context.Context, host string) ([]net.IP, error) {
			var ips []net.IP
			for _, s := range hosts[host] {
				ips = append(ips, net.ParseIP(s))
			}
			if len(ips) == 0 {
				return nil, errors.New("no such host")
			}
			return ips, nil
		},
		MyIPs: func() []net.IP { return []net.IP{net.ParseIP("fd00::5"), net.ParseIP("10.1.2.3")} },
		Now:   func() time.Time { return now },
		Limit: 2 * time.Second,
	}
}

// evalExpr evaluates a JavaScript expression with the PAC helpers.
func evalExpr(t *testing.T, env Env, expr string) string {
	t.Helper()
	s, err := Compile("test", []byte("function FindProxyForURL(url, host) { return String("+expr+"); }"))
	require.NoError(t, err)
	res, err := s.FindProxy(context.Background(), env, &url.URL{Scheme: "http", Host: "x"})
	require.NoError(t, err, expr)
	return res
}

func TestPACHelpers(t *testing.T) {
	t.Parallel()
	// Wednesday 2025-03-12 14:30:15 in UTC+1, 13:30:15 GMT.
	now := time.Date(2025, 3, 12, 14, 30, 15, 0, time.FixedZone("CET", 3600))
	env := testPACEnv(now)
	for expr, want := range map[string]string{
		`isPlainHostName("www")`:                                                       "true",
		`isPlainHostName("www.example.com")`:                                           "false",
		`isPlainHostName("::1")`:                                                       "false",
		`dnsDomainIs("www.example.com", ".example.com")`:                               "true",
		`dnsDomainIs("www.EXAMPLE.com", ".example.com")`:                               "true",
		`dnsDomainIs("www", ".example.com")`:                                           "false",
		`localHostOrDomainIs("www.example.com", "www.example.com")`:                    "true",
		`localHostOrDomainIs("www", "www.example.com")`:                                "true",
		`localHostOrDomainIs("www.other.com", "www.example.com")`:                      "false",
		`localHostOrDomainIs("home", "www.example.com")`:                               "false",
		`isResolvable("intranet.corp.example")`:                                        "true",
		`isResolvable("nowhere.example")`:                                              "false",
		`isResolvable("v6only.example")`:                                               "false",
		`isResolvableEx("v6only.example")`:                                             "true",
		`dnsResolve("www.example.com")`:                                                "93.184.216.34",
		`dnsResolve("nowhere.example")`:                                                "null",
		`dnsResolveEx("www.example.com")`:                                              "2001:db8::10;93.184.216.34",
		`myIpAddress()`:                                                                "10.1.2.3",
		`myIpAddressEx()`:                                                              "fd00::5;10.1.2.3",
		`dnsDomainLevels("www")`:                                                       "0",
		`dnsDomainLevels("www.example.com")`:                                           "2",
		`shExpMatch("http://home.netscape.com/people/ari/index.html", "*/ari/*")`:      "true",
		`shExpMatch("http://home.netscape.com/people/montulli/index.html", "*/ari/*")`: "false",
		`shExpMatch("abc.example", "a?c.*")`:                                           "true",
		`shExpMatch("a.b", "a.b")`:                                                     "true",
		`shExpMatch("axb", "a.b")`:                                                     "false", // "." is literal
		`isInNet("intranet.corp.example", "10.0.0.0", "255.0.0.0")`:                    "true",
		`isInNet("10.20.30.40", "10.20.0.0", "255.255.0.0")`:                           "true",
		`isInNet("192.168.1.1", "10.0.0.0", "255.0.0.0")`:                              "false",
		`isInNet("nowhere.example", "10.0.0.0", "255.0.0.0")`:                          "false",
		`isInNetEx("2001:db8::1", "2001:db8::/32")`:                                    "true",
		`isInNetEx("10.1.2.3", "10.0.0.0/8")`:                                          "true",
		`isInNetEx("10.1.2.3", "11.0.0.0/8")`:                                          "false",
		`sortIpAddressList("10.2.3.9;2001:db8::1;10.2.3.1;::1")`:                       "::1;2001:db8::1;10.2.3.1;10.2.3.9",
		`sortIpAddressList("not-an-ip")`:                                               "false",
		`getClientVersion()`:                                                           "1.0",
		`weekdayRange("WED")`:                                                          "true",
		`weekdayRange("MON", "FRI")`:                                                   "true",
		`weekdayRange("SAT", "TUE")`:                                                   "false",
		`weekdayRange("FRI", "WED")`:                                                   "true", // wraps
		`weekdayRange("THU", "GMT")`:                                                   "false",
		`dateRange(12)`:                                                                "true",
		`dateRange("MAR")`:                                                             "true",
		`dateRange(2025)`:                                                              "true",
		`dateRange(2024)`:                                                              "false",
		`dateRange(1, 15)`:                                                             "true",
		`dateRange("JAN", "FEB")`:                                                      "false",
		`dateRange("NOV", "MAR")`:                                                      "true", // wraps over the year's end
		`dateRange(1, "MAR", 11, "MAR")`:                                               "false",
		`dateRange(1, "MAR", 2025, 31, "DEC", 2025)`:                                   "true",
		`dateRange(2020, 2024)`:                                                        "false",
		`dateRange(12, "GMT")`:                                                         "true",
		`timeRange(14)`:                                                                "true",
		`timeRange(13, "GMT")`:                                                         "true",
		`timeRange(9, 17)`:                                                             "true",
		`timeRange(9, 14)`:                                                             "false", // up to 13:59:59
		`timeRange(22, 6)`:                                                             "false",
		`timeRange(14, 30, 15, 0)`:                                                     "true",
		`timeRange(14, 31, 15, 0)`:                                                     "false",
		`timeRange(14, 30, 0, 14, 30, 15)`:                                             "true",
		`timeRange(14, 30, 0, 14, 30, 14)`:                                             "false",
	} {
		require.Equal(t, want, evalExpr(t, env, expr), expr)
	}
}

func TestPACURLSeenByScript(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"wss://user:pw@host.example:4984/db/_blipsync?x=1": "https://host.example:4984/",
		"ws://host.example/path?q=1#frag":                  "http://host.example/path?q=1",
		"ws://[2001:db8::1]:8080":                          "http://[2001:db8::1]:8080/",
	} {
		u, err := url.Parse(in)
		require.NoError(t, err)
		require.Equal(t, want, pacURL(u), in)
	}
}

func TestParsePACResult(t *testing.T) {
	t.Parallel()
	list := func(ps []*url.URL) string {
		var s []string
		for _, p := range ps {
			if p == nil {
				s = append(s, "DIRECT")
			} else {
				s = append(s, p.String())
			}
		}
		return strings.Join(s, " ")
	}
	for in, want := range map[string]struct{ proxies, skipped string }{
		"PROXY a.example:3128; HTTPS b.example:443; SOCKS5 c.example:1080; DIRECT": {"http://a.example:3128 https://b.example:443 socks5h://c.example:1080 DIRECT", ""},
		"  proxy a:1 ;;direct ":             {"http://a:1 DIRECT", ""},
		"SOCKS s:1080":                      {"socks5h://s:1080", ""},
		"SOCKS4 old:1080; PROXY [::1]:8080": {"http://[::1]:8080", "SOCKS4 old:1080"},
		"PROXY noport; QUIC q:443":          {"", "PROXY noport, QUIC q:443"},
		"":                                  {"", ""},
	} {
		ps, skipped := ParseResult(in)
		require.Equal(t, want.proxies, list(ps), in)
		require.Equal(t, want.skipped, strings.Join(skipped, ", "), in)
	}
}

// An endless loop is interrupted at the limit, the interpreter is
// discarded, and the next evaluation works.
func TestPACTimeLimit(t *testing.T) {
	t.Parallel()
	env := testPACEnv(time.Now())
	env.Limit = 100 * time.Millisecond
	s, err := Compile("loop", []byte(`var n = 0;
function FindProxyForURL(url, host) {
	n++;
	if (host == "loop") { while (true) {} }
	return "PROXY p:" + n;
}`))
	require.NoError(t, err)
	u := func(h string) *url.URL { return &url.URL{Scheme: "ws", Host: h} }
	res, err := s.FindProxy(context.Background(), env, u("a"))
	require.NoError(t, err)
	require.Equal(t, "PROXY p:1", res)
	start := time.Now()
	_, err = s.FindProxy(context.Background(), env, u("loop"))
	require.ErrorIs(t, err, errPACTimeout)
	require.Less(t, time.Since(start), time.Second)
	res, err = s.FindProxy(context.Background(), env, u("a"))
	require.NoError(t, err)
	require.Equal(t, "PROXY p:1", res, "the interrupted interpreter was discarded: a fresh one ran the top level again")

	// A top level that never ends is cut off too.
	s, err = Compile("toploop", []byte(`for (;;) {}`))
	require.NoError(t, err)
	_, err = s.FindProxy(context.Background(), env, u("a"))
	require.ErrorIs(t, err, errPACTimeout)

	// The caller's context interrupts as well.
	s, err = Compile("loop2", []byte(`function FindProxyForURL(u, h) { while (true) {} }`))
	require.NoError(t, err)
	env.Limit = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.FindProxy(ctx, env, u("a"))
	require.ErrorIs(t, err, errPACTimeout)
}

func TestPACScriptErrors(t *testing.T) {
	t.Parallel()
	env := testPACEnv(time.Now())
	// None of these scripts runs long, but on a loaded machine the deep
	// recursion could outlast the usual 2 s and end as "time limit"
	// instead of its own error (seen once in a full -race run).
	env.Limit = 30 * time.Second
	_, err := Compile("bad", []byte(`function FindProxyForURL(url, host) { return "DIRECT" `))
	require.ErrorContains(t, err, "does not compile")
	for src, want := range map[string]string{
		`var x = 1;`: "no FindProxyForURL",
		`function FindProxyForURL(u, h) { throw new Error("boom"); }`:                     "boom",
		`function FindProxyForURL(u, h) { return undefined; }`:                            "returned nothing",
		`function FindProxyForURL(u, h) { return require("fs"); }`:                        "require is not defined",
		`function FindProxyForURL(u, h) { return XMLHttpRequest; }`:                       "XMLHttpRequest is not defined",
		`function FindProxyForURL(u, h) { return setTimeout(h, 1); }`:                     "setTimeout is not defined",
		`function f() { return f() + 1; } function FindProxyForURL(u, h) { return f(); }`: "call stack deeper than",
	} {
		s, err := Compile("x", []byte(src))
		require.NoError(t, err)
		_, err = s.FindProxy(context.Background(), env, &url.URL{Scheme: "ws", Host: "h"})
		require.ErrorContains(t, err, want, src)
	}
}

func TestWPADCandidates(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		"http://wpad.eng.lab.corp.example.com/wpad.dat",
		"http://wpad.lab.corp.example.com/wpad.dat",
		"http://wpad.corp.example.com/wpad.dat",
		"http://wpad.example.com/wpad.dat", // the registrable domain: the last one
		"http://wpad.example.co.uk/wpad.dat",
		"http://wpad.corp.local/wpad.dat",
	}, Candidates([]string{"eng.lab.corp.example.com.", "corp.example.com", "example.co.uk", "co.uk", "com", "corp.local", "", "bad/name"}))
	// Never wpad.co.uk, wpad.com or a bare "wpad".
	require.Empty(t, Candidates([]string{"co.uk", "com", "local"}))
}
