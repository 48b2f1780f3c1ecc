package sysproxy

import (
	"bufio"
	"io"
	"os"
	"strings"
)

// SearchDomains returns the machine's DNS domains, most specific
// first. Per-OS files may replace it (Windows reads the registry); the default reads /etc/resolv.conf
// (domain and search lines) and the host name's domain part.
var SearchDomains = func() []string {
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
