package pac

import (
	"net"
	"sort"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// The standard PAC helpers (Netscape's, and Microsoft's IPv6-aware "Ex"
// variants), written in Go. DNS helpers use the evaluation's context, so
// the evaluation's time limit bounds them too.

func installPACHelpers(rt *goja.Runtime, st *pacState) {
	lookup := func(host string) []net.IP {
		if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
			return []net.IP{ip}
		}
		if host == "" {
			return nil
		}
		ips, err := st.env.LookupIP(st.ctx, host)
		if err != nil {
			return nil
		}
		return ips
	}
	firstV4 := func(ips []net.IP) net.IP {
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				return v4
			}
		}
		return nil
	}
	joinIPs := func(ips []net.IP) string {
		s := make([]string, len(ips))
		for i, ip := range ips {
			s[i] = ip.String()
		}
		return strings.Join(s, ";")
	}
	set := func(name string, fn any) {
		if err := rt.Set(name, fn); err != nil {
			panic(err) // only a programming error gets here
		}
	}

	set("isPlainHostName", func(host string) bool {
		return !strings.ContainsAny(host, ".:")
	})
	set("dnsDomainIs", func(host, domain string) bool {
		return len(host) >= len(domain) && strings.EqualFold(host[len(host)-len(domain):], domain)
	})
	set("localHostOrDomainIs", func(host, hostdom string) bool {
		if strings.EqualFold(host, hostdom) {
			return true
		}
		return !strings.Contains(host, ".") && len(hostdom) > len(host) &&
			strings.EqualFold(hostdom[:len(host)+1], host+".")
	})
	set("isResolvable", func(host string) bool { return firstV4(lookup(host)) != nil })
	set("isResolvableEx", func(host string) bool { return len(lookup(host)) > 0 })
	set("dnsResolve", func(host string) goja.Value {
		if ip := firstV4(lookup(host)); ip != nil {
			return rt.ToValue(ip.String())
		}
		return goja.Null()
	})
	set("dnsResolveEx", func(host string) string { return joinIPs(lookup(host)) })
	set("myIpAddress", func() string {
		if ip := firstV4(st.env.MyIPs()); ip != nil {
			return ip.String()
		}
		return "127.0.0.1"
	})
	set("myIpAddressEx", func() string { return joinIPs(st.env.MyIPs()) })
	set("dnsDomainLevels", func(host string) int { return strings.Count(host, ".") })
	set("shExpMatch", func(s, pattern string) bool { return proxyurl.MatchGlob(pattern, s) })
	set("isInNet", func(host, pattern, mask string) bool {
		ip := firstV4(lookup(host))
		p := net.ParseIP(pattern).To4()
		m := net.ParseIP(mask).To4()
		if ip == nil || p == nil || m == nil {
			return false
		}
		return ip.Mask(net.IPMask(m)).Equal(p.Mask(net.IPMask(m)))
	})
	set("isInNetEx", func(addr, prefix string) bool {
		ip := net.ParseIP(strings.Trim(addr, "[]"))
		_, n, err := net.ParseCIDR(prefix)
		return ip != nil && err == nil && n.Contains(ip)
	})
	set("sortIpAddressList", func(list string) goja.Value {
		if s, ok := sortIPList(list); ok {
			return rt.ToValue(s)
		}
		return rt.ToValue(false)
	})
	set("getClientVersion", func() string { return "1.0" })
	set("alert", func(string) {}) // scripts call it for debugging; ignored
	set("weekdayRange", func(call goja.FunctionCall) goja.Value {
		return rt.ToValue(weekdayRange(st.env.Now(), argStrings(call)))
	})
	set("dateRange", func(call goja.FunctionCall) goja.Value {
		return rt.ToValue(dateRange(st.env.Now(), argStrings(call)))
	})
	set("timeRange", func(call goja.FunctionCall) goja.Value {
		return rt.ToValue(timeRange(st.env.Now(), argStrings(call)))
	})
}

func argStrings(call goja.FunctionCall) []string {
	out := make([]string, len(call.Arguments))
	for i, a := range call.Arguments {
		out[i] = strings.TrimSpace(a.String())
	}
	return out
}

// takeGMT removes a trailing "GMT" argument and returns now in UTC when
// there was one.
func takeGMT(now time.Time, args []string) (time.Time, []string) {
	if n := len(args); n > 0 && strings.EqualFold(args[n-1], "GMT") {
		return now.UTC(), args[:n-1]
	}
	return now, args
}

var weekdays = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
var months = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}

// weekdayRange(wd1[, wd2][, "GMT"]): today is wd1, or between wd1 and wd2
// inclusive, wrapping over the week's end (FRI, MON).
func weekdayRange(now time.Time, args []string) bool {
	now, args = takeGMT(now, args)
	if len(args) == 0 || len(args) > 2 {
		return false
	}
	from := indexOf(weekdays, args[0])
	to := from
	if len(args) == 2 {
		to = indexOf(weekdays, args[1])
	}
	if from < 0 || to < 0 {
		return false
	}
	d := int(now.Weekday())
	if from <= to {
		return from <= d && d <= to
	}
	return d >= from || d <= to
}

// dateRange accepts the Netscape forms: day, month, year or a combination
// of them (day month year, in that order), alone (one date) or twice (a
// range, inclusive, wrapping over the year's end when no year is given),
// and a trailing "GMT". Days are 1-31, months JAN-DEC, years four digits.
func dateRange(now time.Time, args []string) bool {
	now, args = takeGMT(now, args)
	n := len(args)
	if n == 0 || n > 6 {
		return false
	}
	type partial struct{ day, month, year int } // -1 when absent
	parse := func(args []string) (partial, bool) {
		p := partial{-1, -1, -1}
		for _, a := range args {
			if m := indexOf(months, a); m >= 0 {
				p.month = m + 1
			} else if v, ok := atoiString(a); ok && v >= 1 && v <= 31 {
				p.day = v
			} else if ok && v > 31 {
				p.year = v
			} else {
				return p, false
			}
		}
		return p, true
	}
	var lo, hi partial
	var ok1, ok2 bool
	if n == 1 {
		lo, ok1 = parse(args)
		hi, ok2 = lo, true
	} else {
		if n%2 != 0 {
			return false
		}
		lo, ok1 = parse(args[:n/2])
		hi, ok2 = parse(args[n/2:])
	}
	if !ok1 || !ok2 {
		return false
	}
	// Compare only the fields given; absent ones count as equal.
	key := func(p partial, day, month, year int) int {
		k := 0
		if lo.year >= 0 {
			k += year * 10000
		}
		if lo.month >= 0 {
			k += month * 100
		}
		if lo.day >= 0 {
			k += day
		}
		return k
	}
	if (lo.day < 0) != (hi.day < 0) || (lo.month < 0) != (hi.month < 0) || (lo.year < 0) != (hi.year < 0) {
		return false
	}
	a := key(lo, lo.day, lo.month, lo.year)
	b := key(hi, hi.day, hi.month, hi.year)
	t := key(lo, now.Day(), int(now.Month()), now.Year())
	if a <= b {
		return a <= t && t <= b
	}
	return t >= a || t <= b
}

// timeRange(hour), (h1, h2), (h1, m1, h2, m2), (h1, m1, s1, h2, m2, s2),
// each with an optional trailing "GMT". One hour means that whole hour;
// ranges run from the first time up to the second (hours and minutes:
// excluded; seconds: included), wrapping past midnight when the second is
// earlier.
func timeRange(now time.Time, args []string) bool {
	now, args = takeGMT(now, args)
	nums := make([]int, len(args))
	for i, a := range args {
		v, ok := atoiString(a)
		if !ok {
			return false
		}
		nums[i] = v
	}
	t := now.Hour()*3600 + now.Minute()*60 + now.Second()
	var from, to int
	switch len(nums) {
	case 1:
		return now.Hour() == nums[0]
	case 2:
		if nums[0] == nums[1] {
			return now.Hour() == nums[0]
		}
		from, to = nums[0]*3600, nums[1]*3600-1 // (9, 17): 9:00:00 to 16:59:59
	case 4:
		from, to = nums[0]*3600+nums[1]*60, nums[2]*3600+nums[3]*60-1
	case 6:
		from, to = nums[0]*3600+nums[1]*60+nums[2], nums[3]*3600+nums[4]*60+nums[5]
	default:
		return false
	}
	if from <= to {
		return from <= t && t <= to
	}
	return t >= from || t <= to
}

func atoiString(s string) (int, bool) {
	n := 0
	if s == "" || len(s) > 6 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// sortIPList sorts ';'-separated addresses, IPv6 first, numerically, as
// sortIpAddressList does; ok is false when one is not an address.
func sortIPList(list string) (string, bool) {
	var ips []net.IP
	for _, s := range strings.Split(list, ";") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return "", false
		}
		ips = append(ips, ip)
	}
	sort.SliceStable(ips, func(i, j int) bool {
		i4, j4 := ips[i].To4() != nil, ips[j].To4() != nil
		if i4 != j4 {
			return !i4
		}
		return string(ips[i].To16()) < string(ips[j].To16())
	})
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return strings.Join(out, ";"), true
}
