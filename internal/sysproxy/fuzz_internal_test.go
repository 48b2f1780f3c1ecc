package sysproxy

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

func testdataFS(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", "proxyconfig", name))
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// The OS settings parsers read text other programs wrote, and the PAC
// result parser a script's answer: none may panic, and every proxy they
// return must be usable.
func FuzzProxySettingsParsers(f *testing.F) {
	for _, name := range []string{"scutil-manual.txt", "scutil-pac.txt", "kioslaverc-manual", "kioslaverc-spaces", "kioslaverc-env"} {
		b, err := testdataFS(name)
		if err == nil {
			f.Add(string(b))
		}
	}
	f.Add("org.gnome.system.proxy mode 'manual'\norg.gnome.system.proxy ignore-hosts ['a', 'b\\'c']\norg.gnome.system.proxy.http host '[::1]'\norg.gnome.system.proxy.http port 8080\n")
	f.Add("PROXY a:1; HTTPS [::1]:2; SOCKS5 c:3; DIRECT")
	f.Fuzz(func(t *testing.T, in string) {
		getenv := func(string) string { return "x" }
		var all []*Settings
		if s, err := parseScutil(strings.NewReader(in)); err == nil {
			all = append(all, s)
		}
		if s, err := parseKioslaverc(strings.NewReader(in), getenv); err == nil {
			all = append(all, s)
		}
		if s, err := parseGSettings(in); err == nil {
			all = append(all, s)
		}
		all = append(all, parseRegistry(registryValues{ProxyEnable: 1, ProxyServer: in, ProxyOverride: in, AutoConfigURL: in, DefaultConnectionSettings: []byte(in)}))
		for _, s := range all {
			for _, u := range []string{"ws://a.example/", "wss://[::1]:8443/", "ws://10.1.2.3/"} {
				_, _ = s.ManualProxy(mustParse(u))
			}
			for _, pat := range s.Bypass {
				_ = BypassMatch(pat, "a.example", "")
			}
		}
		_ = proxyurl.MatchGlob(in, "a.example")
	})
}
