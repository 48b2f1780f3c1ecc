package sysproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// GNOME's proxy settings (schema org.gnome.system.proxy), read with the
// gsettings tool so no cgo is needed. Portable, so that it is tested on any
// system from fixtures and for real where gsettings is installed.

// ReadGNOME runs "gsettings list-recursively org.gnome.system.proxy"
// with env as its whole environment (nil: inherit) and parses the answer.
// ctx bounds the run.
func ReadGNOME(ctx context.Context, gsettings string, env []string) (*Settings, error) {
	cmd := exec.CommandContext(ctx, gsettings, "list-recursively", "org.gnome.system.proxy")
	cmd.Env = env
	cmd.WaitDelay = time.Second // a child left holding the output cannot hang us
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, fmt.Errorf("gsettings: %v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("gsettings: %w", ctx.Err())
		}
		return nil, fmt.Errorf("gsettings: %w", err)
	}
	return parseGSettings(string(out))
}

// parseGSettings reads the output of "gsettings list-recursively
// org.gnome.system.proxy": one "schema key value" line per key, values in
// GVariant text form ('string', 8080, true, ['a', 'b'], @as []).
//
// mode "none" gives no proxy; "auto" a PAC URL (autoconfig-url) or, when
// that is empty, automatic detection (WPAD); "manual" the http, https and
// socks proxies with ignore-hosts as exceptions. The https proxy defaults to
// the http one (GNOME's use-same-proxy, and what an http proxy can do
// anyway); the socks proxy serves what nothing more specific serves. The
// http proxy carries authentication-user and authentication-password when
// use-authentication is true.
func parseGSettings(out string) (*Settings, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		schema, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(schema, "org.gnome.system.proxy") {
			continue
		}
		key, value, ok := strings.Cut(rest, " ")
		if !ok {
			continue
		}
		sub := strings.TrimPrefix(strings.TrimPrefix(schema, "org.gnome.system.proxy"), ".")
		if sub != "" {
			key = sub + "." + key
		}
		vals[key] = strings.TrimSpace(value)
	}
	if _, ok := vals["mode"]; !ok {
		return nil, errors.New("gsettings printed no org.gnome.system.proxy mode")
	}
	str := func(k string) string { s, _ := gvariantString(vals[k]); return s }
	s := &Settings{Source: GNOME, From: "gsettings org.gnome.system.proxy"}
	switch mode := str("mode"); mode {
	case "none", "":
		return s, nil
	case "auto":
		s.PACURL = str("autoconfig-url")
		s.AutoDetect = s.PACURL == ""
		return s, nil
	case "manual":
	default:
		return nil, fmt.Errorf("gsettings: unknown proxy mode %q", mode)
	}
	proxy := func(scheme, prefix string) *url.URL {
		port := strings.TrimPrefix(vals[prefix+".port"], "uint32 ")
		return proxyurl.FromHostPort(scheme, str(prefix+".host"), port)
	}
	s.HTTP = proxy("http", "http")
	if s.HTTP != nil && vals["http.use-authentication"] == "true" && str("http.authentication-user") != "" {
		s.HTTP.User = url.UserPassword(str("http.authentication-user"), str("http.authentication-password"))
	}
	s.HTTPS = proxy("http", "https")
	if s.HTTPS == nil && s.HTTP != nil {
		s.HTTPS = s.HTTP
	}
	s.SOCKS = proxy("socks5h", "socks")
	s.Bypass = gvariantStrings(vals["ignore-hosts"])
	return s, nil
}

// gvariantString decodes a GVariant string literal ('...' or "...", with
// backslash escapes).
func gvariantString(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 2 || (v[0] != '\'' && v[0] != '"') || v[len(v)-1] != v[0] {
		return "", false
	}
	s, _, ok := scanGVariantString(v)
	return s, ok
}

// scanGVariantString reads one quoted string at the start of v and returns
// it and the rest of v.
func scanGVariantString(v string) (s, rest string, ok bool) {
	q := v[0]
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v):
			i++
			switch v[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(v[i])
			}
		case c == q:
			return b.String(), v[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// gvariantStrings decodes a GVariant array of strings: ['a', 'b'],
// @as [] or [].
func gvariantStrings(v string) []string {
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "@as"))
	if !strings.HasPrefix(v, "[") {
		return nil
	}
	v = v[1:]
	var out []string
	for {
		v = strings.TrimLeft(v, " ,")
		if v == "" || v[0] == ']' {
			return out
		}
		if v[0] != '\'' && v[0] != '"' {
			return out
		}
		s, rest, ok := scanGVariantString(v)
		if !ok {
			return out
		}
		out = append(out, s)
		v = rest
	}
}

// unquoteInt parses a number that may be quoted.
func unquoteInt(s string) (int, bool) {
	n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(s), `"'`))
	return n, err == nil
}

// gnomeDesktops share org.gnome.system.proxy.
var gnomeDesktops = []string{"GNOME", "GNOME-CLASSIC", "GNOME-FLASHBACK", "UNITY", "X-CINNAMON", "CINNAMON", "BUDGIE", "BUDGIE-DESKTOP", "PANTHEON", "MATE", "XFCE", "LXDE", "LXQT", "DEEPIN", "POP"}

// desktopKind maps XDG_CURRENT_DESKTOP (a colon-separated list), or
// DESKTOP_SESSION when it is empty, to the settings to read: KDE,
// GNOME, or "" for none.
func desktopKind(current, session, kdeFull string) Source {
	names := current
	if names == "" {
		names = session
	}
	for _, d := range strings.Split(strings.ToUpper(names), ":") {
		d = strings.TrimSpace(d)
		if d == "KDE" || strings.HasPrefix(d, "PLASMA") {
			return KDE
		}
		for _, g := range gnomeDesktops {
			if d == g || strings.HasPrefix(d, g+"-") || (d == "UBUNTU" && g == "GNOME") {
				return GNOME
			}
		}
	}
	if kdeFull == "true" {
		return KDE
	}
	return ""
}
