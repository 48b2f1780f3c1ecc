package sysproxy

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// KDE's proxy settings: the [Proxy Settings] group of kioslaverc.
// Portable, tested from fixtures.

// kioslavercPaths lists where kioslaverc may be, most current first:
// Plasma 5/6 under $XDG_CONFIG_HOME (default ~/.config), then KDE 4's.
func kioslavercPaths(getenv func(string) string) []string {
	var out []string
	home := getenv("HOME")
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		out = append(out, x+"/kioslaverc")
	} else if home != "" {
		out = append(out, home+"/.config/kioslaverc")
	}
	if home != "" {
		out = append(out, home+"/.kde4/share/config/kioslaverc", home+"/.kde/share/config/kioslaverc")
	}
	return out
}

// linuxKDESettings reads the first kioslaverc found; none found means no
// settings.
func linuxKDESettings(getenv func(string) string) (*Settings, error) {
	for _, path := range kioslavercPaths(getenv) {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		s, err := parseKioslaverc(f, getenv)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s.From = path
		return s, nil
	}
	return nil, nil
}

// parseKioslaverc reads kioslaverc's [Proxy Settings]:
//
//	ProxyType           0 none, 1 manual, 2 PAC ("Proxy Config Script"),
//	                    3 automatic detection (WPAD), 4 environment variables
//	httpProxy           "http://host:port" or "http://host port" (older KDE);
//	httpsProxy          with ProxyType 4, the names of the variables that
//	socksProxy          hold them instead (and NoProxyFor's too)
//	NoProxyFor          comma-separated exceptions
//	ReversedException   true: NoProxyFor lists the only hosts that use a proxy
//
// Keys marked [$e] have $VARIABLES expanded with getenv. An https proxy
// that is not set stays unset (KDE does not reuse the http one); the socks
// proxy serves what nothing more specific serves.
func parseKioslaverc(r io.Reader, getenv func(string) string) (*Settings, error) {
	vals := map[string]string{}
	group := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			group = strings.TrimSpace(strings.Trim(line, "[]"))
			continue
		}
		if group != "Proxy Settings" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if i := strings.Index(k, "["); i >= 0 { // "Key[$e]", "Key[$i]", "Key[de]"
			flags := k[i:]
			k = strings.TrimSpace(k[:i])
			if !strings.Contains(flags, "$") {
				continue // a translation, "Key[de]"
			}
			if strings.Contains(flags, "$e") {
				v = expandEnv(v, getenv)
			}
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	s := &Settings{Source: KDE, From: "kioslaverc"}
	typ, _ := unquoteInt(vals["ProxyType"])
	switch typ {
	case 0:
		return s, nil
	case 1, 4:
	case 2:
		s.PACURL = vals["Proxy Config Script"]
		if s.PACURL != "" && !strings.Contains(s.PACURL, "://") && strings.HasPrefix(s.PACURL, "/") {
			s.PACURL = "file://" + s.PACURL
		}
		return s, nil
	case 3:
		s.AutoDetect = true
		return s, nil
	default:
		return nil, fmt.Errorf("kioslaverc: unknown ProxyType %d", typ)
	}
	get := func(k string) string {
		v := vals[k]
		if typ == 4 && v != "" {
			return getenv(strings.TrimPrefix(v, "$"))
		}
		return v
	}
	s.HTTP = kdeProxy("http", get("httpProxy"))
	s.HTTPS = kdeProxy("http", get("httpsProxy"))
	s.SOCKS = kdeProxy("socks5h", get("socksProxy"))
	for _, p := range strings.Split(get("NoProxyFor"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			s.Bypass = append(s.Bypass, p)
		}
	}
	s.Reversed = strings.EqualFold(vals["ReversedException"], "true")
	return s, nil
}

// kdeProxy parses "scheme://host:port" or "scheme://host port"; a socks
// scheme means SOCKS5 with remote resolution.
func kdeProxy(defaultScheme, v string) *url.URL {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	scheme := defaultScheme
	if i := strings.Index(v, "://"); i >= 0 {
		switch strings.ToLower(v[:i]) {
		case "socks", "socks5", "socks5h":
			scheme = "socks5h"
		case "https":
			scheme = "https"
		case "http":
			scheme = "http"
		}
		v = v[i+3:]
	}
	host, port, _ := strings.Cut(v, " ")
	return proxyurl.FromHostPort(scheme, host, port)
}

// expandEnv replaces $NAME and ${NAME} with getenv's values.
func expandEnv(s string, getenv func(string) string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		if s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				break
			}
			b.WriteString(getenv(s[j+1 : j+end]))
			i = j + end
			continue
		}
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		b.WriteString(getenv(s[i+1 : j]))
		i = j - 1
	}
	return b.String()
}
