package sysproxy

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// macOS's proxy settings as "scutil --proxy" prints them, so no cgo is
// needed. Portable, tested from fixtures.

// parseScutil reads the output of "scutil --proxy":
//
//	<dictionary> {
//	  ExceptionsList : <array> {
//	    0 : *.local
//	    1 : 169.254/16
//	  }
//	  ExcludeSimpleHostnames : 1
//	  HTTPEnable : 1
//	  HTTPPort : 3128
//	  HTTPProxy : proxy.example
//	  ...
//	}
//
// Only the top-level keys count (__SCOPED__ holds per-interface copies):
// HTTPEnable/HTTPProxy/HTTPPort, HTTPSEnable/HTTPSProxy/HTTPSPort,
// SOCKSEnable/SOCKSProxy/SOCKSPort (SOCKS5, names resolved by the proxy),
// ExceptionsList, ExcludeSimpleHostnames, ProxyAutoConfigEnable with
// ProxyAutoConfigURLString, and ProxyAutoDiscoveryEnable. HTTPS targets use
// the HTTPS proxy only (macOS does not reuse the HTTP one).
func parseScutil(r io.Reader) (*Settings, error) {
	top := map[string]string{}
	var exceptions []string
	depth := 0
	inExceptions := false
	sawDict := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if line == "}" {
			depth--
			inExceptions = false
			continue
		}
		k, v, ok := strings.Cut(line, " : ")
		if !ok {
			if strings.HasPrefix(line, "<dictionary>") {
				sawDict = true
				depth++
			}
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		opens := strings.HasSuffix(v, "{")
		switch {
		case depth == 1 && opens:
			inExceptions = k == "ExceptionsList"
			depth++
		case depth == 2 && inExceptions:
			exceptions = append(exceptions, v)
		case depth == 1:
			top[k] = v
		case opens:
			depth++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sawDict {
		return nil, errors.New("scutil --proxy printed no dictionary")
	}
	on := func(k string) bool { return top[k] == "1" }
	s := &Settings{Source: MacOS, From: "scutil --proxy"}
	s.AutoDetect = on("ProxyAutoDiscoveryEnable")
	if on("ProxyAutoConfigEnable") {
		s.PACURL = top["ProxyAutoConfigURLString"]
	}
	if on("HTTPEnable") {
		s.HTTP = proxyurl.FromHostPort("http", top["HTTPProxy"], top["HTTPPort"])
	}
	if on("HTTPSEnable") {
		s.HTTPS = proxyurl.FromHostPort("http", top["HTTPSProxy"], top["HTTPSPort"])
	}
	if on("SOCKSEnable") {
		s.SOCKS = proxyurl.FromHostPort("socks5h", top["SOCKSProxy"], top["SOCKSPort"])
	}
	s.Bypass = exceptions
	s.BypassSimple = on("ExcludeSimpleHostnames")
	return s, nil
}
