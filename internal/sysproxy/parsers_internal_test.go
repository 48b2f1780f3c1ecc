package sysproxy

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"
)

// Internal tests of the per-OS parsers, from fixtures of what the real
// tools and files hold.

// settingsView flattens settings for comparison.
type settingsView struct {
	Auto              bool
	PAC               string
	HTTP, HTTPS, SOCK string
	Bypass            []string
	Simple, Reversed  bool
}

func view(s *Settings) settingsView {
	str := func(u *url.URL) string {
		if u == nil {
			return ""
		}
		return u.String()
	}
	return settingsView{s.AutoDetect, s.PACURL, str(s.HTTP), str(s.HTTPS), str(s.SOCKS), s.Bypass, s.BypassSimple, s.Reversed}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "proxyconfig", name))
	require.NoError(t, err)
	return b
}

func TestParseScutil(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want settingsView
	}{
		// __SCOPED__ holds per-interface copies that must not override the top level.
		{"scutil-manual.txt", settingsView{
			HTTP: "http://proxy.example.com:3128", HTTPS: "http://sproxy.example.com:3129", SOCK: "socks5h://socks.example.com:1080",
			Bypass: []string{"*.local", "169.254/16", "intranet.example.com"}, Simple: true}},
		{"scutil-pac.txt", settingsView{Auto: true, PAC: "http://pac.example.com/proxy.pac", Bypass: []string{"*.local", "169.254/16"}}},
		{"scutil-none.txt", settingsView{Bypass: []string{"*.local", "169.254/16"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s, err := parseScutil(bytes.NewReader(fixture(t, tc.file)))
			require.NoError(t, err)
			require.Equal(t, MacOS, s.Source)
			require.Equal(t, tc.want, view(s))
		})
	}
	_, err := parseScutil(strings.NewReader("scutil: command not found\n"))
	require.Error(t, err)
}

func TestParseKioslaverc(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HTTP_PROXY": "http://envproxy:3128", "HTTPS_PROXY": "http://envsproxy:3129", "NO_PROXY": "a.example,b.example"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		file string
		want settingsView
	}{
		{"kioslaverc-manual", settingsView{HTTP: "http://proxy.example.org:3128", HTTPS: "http://sproxy.example.org:3129", SOCK: "socks5h://socks.example.org:1080",
			Bypass: []string{".example.org", "localhost", "10.0.0.0/8"}}},
		// Older KDE writes "host port"; ReversedException lists the only proxied hosts.
		{"kioslaverc-spaces", settingsView{HTTP: "http://192.0.2.10:8080", SOCK: "socks5h://192.0.2.11:1080", Bypass: []string{"intranet.example.org"}, Reversed: true}},
		{"kioslaverc-pac", settingsView{PAC: "http://pac.example.org/proxy.pac"}},
		{"kioslaverc-wpad", settingsView{Auto: true}},
		// ProxyType 4: the values name environment variables.
		{"kioslaverc-env", settingsView{HTTP: "http://envproxy:3128", HTTPS: "http://envsproxy:3129", Bypass: []string{"a.example", "b.example"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s, err := parseKioslaverc(bytes.NewReader(fixture(t, tc.file)), getenv)
			require.NoError(t, err)
			require.Equal(t, KDE, s.Source)
			require.Equal(t, tc.want, view(s))
		})
	}
	// [$e] keys expand variables; translations are ignored.
	s, err := parseKioslaverc(strings.NewReader("[Proxy Settings]\nProxyType=1\nhttpProxy[$e]=http://${PROXYHOST}:3128\nhttpProxy[de]=http://nein:1\n"), func(k string) string {
		return map[string]string{"PROXYHOST": "expanded.example"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, "http://expanded.example:3128", s.HTTP.String())
}

// readRegFile reads a regedit export (UTF-16 with a BOM, or UTF-8) into
// the values parseRegistry takes.
func readRegFile(t *testing.T, b []byte) registryValues {
	t.Helper()
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		u := make([]uint16, (len(b)-2)/2)
		for i := range u {
			u[i] = uint16(b[2+2*i]) | uint16(b[3+2*i])<<8
		}
		b = []byte(string(utf16.Decode(u)))
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\\\n", "") // continued hex lines
	var v registryValues
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		name, val, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, `"`) {
			continue
		}
		name = strings.Trim(name, `"`)
		switch {
		case strings.HasPrefix(val, "dword:"):
			n, err := strconv.ParseUint(strings.TrimPrefix(val, "dword:"), 16, 32)
			require.NoError(t, err)
			if name == "ProxyEnable" {
				v.ProxyEnable = uint32(n)
			}
		case strings.HasPrefix(val, "hex:"):
			h := strings.NewReplacer(",", "", " ", "").Replace(strings.TrimPrefix(val, "hex:"))
			raw, err := hex.DecodeString(h)
			require.NoError(t, err)
			if name == "DefaultConnectionSettings" {
				v.DefaultConnectionSettings = raw
			}
		default:
			s, err := strconv.Unquote(val)
			require.NoError(t, err, line)
			switch name {
			case "ProxyServer":
				v.ProxyServer = s
			case "ProxyOverride":
				v.ProxyOverride = s
			case "AutoConfigURL":
				v.AutoConfigURL = s
			}
		}
	}
	return v
}

func TestParseRegistry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want settingsView
	}{
		// "host:port" serves http and https; "<local>" means plain names.
		{"registry-single.reg", settingsView{HTTP: "http://proxy.example.com:8080", HTTPS: "http://proxy.example.com:8080",
			Bypass: []string{"*.example.com", "10.*"}, Simple: true}},
		// The per-protocol form; ftp= is ignored, socks= becomes SOCKS5.
		{"registry-perprotocol.reg", settingsView{HTTP: "http://hproxy.example.com:3128", HTTPS: "http://sproxy.example.com:3129",
			SOCK: "socks5h://socks.example.com:1080", Bypass: []string{"intranet.example.com", "192.168.*"}}},
		// ProxyEnable 0 ignores ProxyServer; the flags turn on the PAC URL and auto-detect.
		{"registry-pac-autodetect.reg", settingsView{Auto: true, PAC: "http://pac.example.com/proxy.pac"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s := parseRegistry(readRegFile(t, fixture(t, tc.file)))
			require.Equal(t, Windows, s.Source)
			require.Equal(t, tc.want, view(s))
		})
	}
	// An AutoConfigURL whose flag is off in DefaultConnectionSettings is stale.
	s := parseRegistry(registryValues{AutoConfigURL: "http://stale/pac", DefaultConnectionSettings: make([]byte, 12)})
	require.Empty(t, s.PACURL)
}

func TestParseGSettingsFixture(t *testing.T) {
	t.Parallel()
	out := `org.gnome.system.proxy autoconfig-url ''
org.gnome.system.proxy ignore-hosts ['localhost', '127.0.0.0/8', '::1', '*.corp.example', 'it\'s.example']
org.gnome.system.proxy mode 'manual'
org.gnome.system.proxy use-same-proxy true
org.gnome.system.proxy.ftp host ''
org.gnome.system.proxy.ftp port 0
org.gnome.system.proxy.http authentication-password 's3cret'
org.gnome.system.proxy.http authentication-user 'alice'
org.gnome.system.proxy.http enabled false
org.gnome.system.proxy.http host 'proxy.corp.example'
org.gnome.system.proxy.http port 3128
org.gnome.system.proxy.http use-authentication true
org.gnome.system.proxy.https host ''
org.gnome.system.proxy.https port 0
org.gnome.system.proxy.socks host 'socks.corp.example'
org.gnome.system.proxy.socks port 1080
`
	s, err := parseGSettings(out)
	require.NoError(t, err)
	require.Equal(t, settingsView{HTTP: "http://alice:s3cret@proxy.corp.example:3128", HTTPS: "http://alice:s3cret@proxy.corp.example:3128",
		SOCK: "socks5h://socks.corp.example:1080", Bypass: []string{"localhost", "127.0.0.0/8", "::1", "*.corp.example", "it's.example"}}, view(s))

	s, err = parseGSettings(strings.Replace(out, "'manual'", "'auto'", 1))
	require.NoError(t, err)
	require.Equal(t, settingsView{Auto: true}, view(s))
	s, err = parseGSettings(strings.Replace(strings.Replace(out, "'manual'", "'auto'", 1), "autoconfig-url ''", "autoconfig-url 'http://pac/x.pac'", 1))
	require.NoError(t, err)
	require.Equal(t, settingsView{PAC: "http://pac/x.pac"}, view(s))
	s, err = parseGSettings(strings.Replace(out, "'manual'", "'none'", 1))
	require.NoError(t, err)
	require.Equal(t, settingsView{}, view(s))
	require.Empty(t, gvariantStrings("@as []"))
	_, err = parseGSettings("No such schema “org.gnome.system.proxy”\n")
	require.Error(t, err)
}

func TestBypassMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, host, port string
		want                bool
	}{
		{"<local>", "intranet", "", true},
		{"<local>", "intranet.corp", "", false},
		{"<local>", "10.1.2.3", "", false},
		{"*", "anything.example", "", true},
		{"10.0.0.0/8", "10.9.8.7", "", true},
		{"10.0.0.0/8", "11.0.0.1", "", false},
		{"10.0.0.0/8", "ten.example", "", false},
		{"169.254/16", "169.254.3.4", "", true}, // macOS's short form
		{"fe80::/10", "fe80::1", "", true},
		{"*.corp.example", "a.b.corp.example", "", true},
		{"*.corp.example", "corp.example", "", false},
		{"10.*", "10.1.2.3", "", true},
		{"192.168.*", "192.169.0.1", "", false},
		{"a?c.example", "abc.example", "", true},
		{".corp.example", "corp.example", "", true},
		{".corp.example", "x.corp.example", "", true},
		{"corp.example", "x.corp.example", "", true},
		{"corp.example", "xcorp.example", "", false},
		{"CORP.example", "Host.Corp.Example", "", true},
		{"host.example:8080", "host.example", "8080", true},
		{"host.example:8080", "host.example", "", false},
		{"192.0.2.1", "192.0.2.1", "", true},
		{"[::1]", "::1", "", true},
		{"::1", "::1", "", true},
		{"", "x", "", false},
	} {
		require.Equal(t, tc.want, BypassMatch(tc.pattern, tc.host, tc.port), "%q vs %q:%q", tc.pattern, tc.host, tc.port)
	}
}

func TestDesktopKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		current, session, kde string
		want                  Source
	}{
		{"GNOME", "", "", GNOME},
		{"ubuntu:GNOME", "", "", GNOME},
		{"X-Cinnamon", "", "", GNOME},
		{"KDE", "", "", KDE},
		{"", "plasma", "", KDE},
		{"", "", "true", KDE},
		{"", "", "", ""},
		{"sway", "", "", ""},
	} {
		require.Equal(t, tc.want, desktopKind(tc.current, tc.session, tc.kde), fmt.Sprint(tc))
	}
}

func TestKioslavercPaths(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": "/home/a"}
	require.Equal(t, []string{"/home/a/.config/kioslaverc", "/home/a/.kde4/share/config/kioslaverc", "/home/a/.kde/share/config/kioslaverc"},
		kioslavercPaths(func(k string) string { return env[k] }))
}
