package sysproxy

import (
	"context"
	"errors"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// On Windows the per-user Internet Settings in the registry hold the proxy
// configuration that the system's settings panel, Edge and Chrome use.
// WinHTTP's machine-wide settings (netsh winhttp) are not read: services
// that rely on them usually export the environment variables too.

func init() {
	osLookup = windowsSettings
	SearchDomains = windowsSearchDomains
}

const internetSettings = `Software\Microsoft\Windows\CurrentVersion\Internet Settings`

func windowsSettings(ctx context.Context, _ func(string) string) (*Settings, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, internetSettings, registry.QUERY_VALUE)
	if err != nil {
		if errors.Is(err, registry.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer k.Close()
	var v registryValues
	if n, _, err := k.GetIntegerValue("ProxyEnable"); err == nil {
		v.ProxyEnable = uint32(n)
	}
	v.ProxyServer, _, _ = k.GetStringValue("ProxyServer")
	v.ProxyOverride, _, _ = k.GetStringValue("ProxyOverride")
	v.AutoConfigURL, _, _ = k.GetStringValue("AutoConfigURL")
	if c, err := registry.OpenKey(registry.CURRENT_USER, internetSettings+`\Connections`, registry.QUERY_VALUE); err == nil {
		v.DefaultConnectionSettings, _, _ = c.GetBinaryValue("DefaultConnectionSettings")
		c.Close()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return parseRegistry(v), nil
}

// windowsSearchDomains reads the primary DNS domain and the search list of
// the TCP/IP parameters.
func windowsSearchDomains() []string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`, registry.QUERY_VALUE)
	if err != nil {
		return nil
	}
	defer k.Close()
	var out []string
	for _, name := range []string{"Domain", "DhcpDomain"} {
		if s, _, err := k.GetStringValue(name); err == nil && s != "" {
			out = append(out, s)
		}
	}
	if s, _, err := k.GetStringValue("SearchList"); err == nil {
		out = append(out, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return out
}
