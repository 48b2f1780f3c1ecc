package sysproxy

import (
	"strings"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// Windows' per-user proxy settings, from the registry key
// HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings.
// Portable, tested from fixtures; proxyconfig_windows.go reads the values.

// registryValues are the Internet Settings values that matter.
type registryValues struct {
	ProxyEnable   uint32 // 1: use ProxyServer
	ProxyServer   string // "host:port" or "http=h:p;https=h:p;socks=h:p"
	ProxyOverride string // ";"-separated exceptions, "<local>" for plain names
	AutoConfigURL string // a PAC script
	// DefaultConnectionSettings is the binary value under Connections;
	// byte 8 holds flags: 0x02 proxy, 0x04 PAC URL, 0x08 automatic
	// detection. nil when absent.
	DefaultConnectionSettings []byte
}

// parseRegistry turns Internet Settings values into settings. Automatic
// detection comes from DefaultConnectionSettings' flags (what the
// "Automatically detect settings" switch sets); AutoConfigURL applies when
// set (and, when the flags exist, their PAC bit is on); ProxyServer when
// ProxyEnable is 1. A ProxyServer without "=" serves http and https alike;
// in the per-protocol form, "http=" and "https=" are HTTP proxies for those
// schemes, "socks=" a SOCKS proxy (Windows speaks SOCKS4 to it; this
// package speaks SOCKS5, with names resolved by the proxy) that serves
// what nothing more specific serves. "<local>" in ProxyOverride sends
// names without a dot direct.
func parseRegistry(v registryValues) *Settings {
	s := &Settings{Source: Windows, From: `HKCU\...\Internet Settings`}
	flags := byte(0)
	haveFlags := len(v.DefaultConnectionSettings) > 8
	if haveFlags {
		flags = v.DefaultConnectionSettings[8]
	}
	s.AutoDetect = flags&0x08 != 0
	if v.AutoConfigURL != "" && (!haveFlags || flags&0x04 != 0) {
		s.PACURL = strings.TrimSpace(v.AutoConfigURL)
	}
	if v.ProxyEnable == 1 && strings.TrimSpace(v.ProxyServer) != "" {
		if !strings.Contains(v.ProxyServer, "=") {
			s.HTTP = proxyurl.FromHostPort("http", strings.Trim(strings.TrimSpace(v.ProxyServer), ";"), "")
			s.HTTPS = s.HTTP
		} else {
			for _, part := range strings.Split(v.ProxyServer, ";") {
				k, val, ok := strings.Cut(part, "=")
				if !ok {
					continue
				}
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "http":
					s.HTTP = proxyurl.FromHostPort("http", val, "")
				case "https":
					s.HTTPS = proxyurl.FromHostPort("http", val, "")
				case "socks":
					s.SOCKS = proxyurl.FromHostPort("socks5h", val, "")
				}
			}
		}
		for _, p := range strings.Split(v.ProxyOverride, ";") {
			p = strings.TrimSpace(p)
			switch {
			case p == "":
			case strings.EqualFold(p, "<local>"):
				s.BypassSimple = true
			default:
				s.Bypass = append(s.Bypass, p)
			}
		}
	}
	return s
}
