package sysproxy

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// The real gsettings from GLib answers, with a throw-away keyfile backend
// in a temporary XDG_CONFIG_HOME: the process environment is not touched.
func TestPeersGNOMEGsettings(t *testing.T) {
	t.Parallel()
	bin := peertest.Require(t, "gsettings", "apt-get install -y libglib2.0-bin gsettings-desktop-schemas")
	env := append(os.Environ(), "GSETTINGS_BACKEND=keyfile", "XDG_CONFIG_HOME="+t.TempDir())
	gset := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"set"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "No such schema") {
			peertest.Missing(t, "the org.gnome.system.proxy schema (apt-get install -y gsettings-desktop-schemas)")
		}
		require.NoError(t, err, "gsettings set %v: %s", args, out)
	}
	read := func() settingsView {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := ReadGNOME(ctx, bin, env)
		require.NoError(t, err)
		require.Equal(t, GNOME, s.Source)
		return view(s)
	}

	require.Equal(t, settingsView{}, read(), "defaults: mode none")

	gset("org.gnome.system.proxy", "mode", "manual")
	gset("org.gnome.system.proxy.http", "host", "proxy.corp.example")
	gset("org.gnome.system.proxy.http", "port", "3128")
	gset("org.gnome.system.proxy.socks", "host", "socks.corp.example")
	gset("org.gnome.system.proxy.socks", "port", "1080")
	gset("org.gnome.system.proxy", "ignore-hosts", "['localhost', '*.corp.example', '10.0.0.0/8', 'it\\'s']")
	require.Equal(t, settingsView{
		HTTP: "http://proxy.corp.example:3128", HTTPS: "http://proxy.corp.example:3128", SOCK: "socks5h://socks.corp.example:1080",
		Bypass: []string{"localhost", "*.corp.example", "10.0.0.0/8", "it's"},
	}, read())

	gset("org.gnome.system.proxy.https", "host", "sproxy.corp.example")
	gset("org.gnome.system.proxy.https", "port", "3129")
	gset("org.gnome.system.proxy.http", "use-authentication", "true")
	gset("org.gnome.system.proxy.http", "authentication-user", "alice")
	gset("org.gnome.system.proxy.http", "authentication-password", "s3cret")
	v := read()
	require.Equal(t, "http://alice:s3cret@proxy.corp.example:3128", v.HTTP)
	require.Equal(t, "http://sproxy.corp.example:3129", v.HTTPS)

	gset("org.gnome.system.proxy", "mode", "auto")
	require.Equal(t, settingsView{Auto: true}, read(), "auto without a URL: WPAD")
	gset("org.gnome.system.proxy", "autoconfig-url", "http://pac.corp.example/proxy.pac")
	require.Equal(t, settingsView{PAC: "http://pac.corp.example/proxy.pac"}, read())

	// A hung gsettings is cut off by the context, even when a child of it
	// holds its output open.
	hang := t.TempDir() + "/gsettings"
	peertest.WriteFile(t, hang, "#!/bin/sh\nsleep 5 &\nsleep 5\n", 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ReadGNOME(ctx, hang, []string{"PATH=/usr/bin:/bin"})
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
}

// The whole Linux look-up on a KDE desktop: kioslaverc found under
// XDG_CONFIG_HOME.
func TestLinuxKDELookup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peertest.WriteFile(t, dir+"/kioslaverc", "[Proxy Settings]\nProxyType=1\nhttpProxy=http://kde-proxy 3128\n", 0o644)
	env := map[string]string{"XDG_CURRENT_DESKTOP": "KDE", "XDG_CONFIG_HOME": dir, "HOME": "/nonexistent"}
	s, err := linuxKDESettings(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, KDE, s.Source)
	require.Equal(t, dir+"/kioslaverc", s.From)
	require.Equal(t, "http://kde-proxy:3128", s.HTTP.String())

	s, err = linuxKDESettings(func(k string) string { return map[string]string{"HOME": "/nonexistent"}[k] })
	require.NoError(t, err)
	require.Nil(t, s, "no kioslaverc: no settings")
}
