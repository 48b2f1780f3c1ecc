package wsproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
	"github.com/wsproxy/wsproxy/internal/proxytest"
	"github.com/wsproxy/wsproxy/internal/sysproxy"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// proxies formats a decision's list as a PAC-style string.
func proxies(d wsproxy.Decision) string {
	var s []string
	for _, p := range d.Proxies {
		if p == nil {
			s = append(s, "DIRECT")
		} else {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, "; ")
}

func manual() *wsproxy.SystemSettings {
	return &wsproxy.SystemSettings{
		Source: sysproxy.GNOME,
		HTTP:   &url.URL{Scheme: "http", Host: "os-proxy:3128"},
		HTTPS:  &url.URL{Scheme: "http", Host: "os-sproxy:3129"},
		Bypass: []string{"*.corp.example", "10.0.0.0/8"},
	}
}

// The order: Dialer.Proxy, then the environment, then the OS, then direct.
func TestProxyForURLResolutionOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		explicit   bool
		hooks      wsproxy.TestHooks
		url        string
		want       string
		wantSource wsproxy.Source
		reason     string
	}{
		{name: "explicit wins over all", explicit: true, hooks: wsproxy.TestHooks{Env: map[string]string{"https_proxy": "http://env:1"}, System: manual()},
			url: "wss://a.example/", want: "http://explicit:9", wantSource: wsproxy.SourceDialer},
		{name: "environment before the OS", hooks: wsproxy.TestHooks{Env: map[string]string{"https_proxy": "env:1"}, System: manual()},
			url: "wss://a.example/", want: "http://env:1", wantSource: wsproxy.SourceEnvironment, reason: "https_proxy is set"},
		{name: "NO_PROXY is the environment's answer", hooks: wsproxy.TestHooks{Env: map[string]string{"https_proxy": "env:1", "NO_PROXY": "a.example"}, System: manual()},
			url: "wss://a.example/", want: "DIRECT", wantSource: wsproxy.SourceEnvironment, reason: "NO_PROXY"},
		{name: "a variable for the other scheme leaves it to the OS", hooks: wsproxy.TestHooks{Env: map[string]string{"http_proxy": "env:1"}, System: manual()},
			url: "wss://a.example/", want: "http://os-sproxy:3129", wantSource: wsproxy.SourceGNOME, reason: "HTTPS proxy"},
		{name: "OS http proxy for ws", hooks: wsproxy.TestHooks{System: manual()},
			url: "ws://a.example/", want: "http://os-proxy:3128", wantSource: wsproxy.SourceGNOME},
		{name: "OS exception wildcard", hooks: wsproxy.TestHooks{System: manual()},
			url: "ws://x.corp.example/", want: "DIRECT", wantSource: wsproxy.SourceGNOME, reason: `exception "*.corp.example" matches`},
		{name: "OS exception CIDR", hooks: wsproxy.TestHooks{System: manual()},
			url: "wss://10.1.2.3:8443/", want: "DIRECT", wantSource: wsproxy.SourceGNOME},
		{name: "OS SOCKS serves what nothing more specific does", hooks: wsproxy.TestHooks{System: &wsproxy.SystemSettings{Source: sysproxy.MacOS, HTTP: &url.URL{Scheme: "http", Host: "h:1"}, SOCKS: &url.URL{Scheme: "socks5h", Host: "s:1080"}}},
			url: "wss://a.example/", want: "socks5h://s:1080", wantSource: wsproxy.SourceMacOS},
		{name: "KDE reversed exceptions", hooks: wsproxy.TestHooks{System: &wsproxy.SystemSettings{Source: sysproxy.KDE, HTTP: &url.URL{Scheme: "http", Host: "h:1"}, Bypass: []string{"only.example"}, Reversed: true}},
			url: "ws://other.example/", want: "DIRECT", wantSource: wsproxy.SourceKDE, reason: "reversed"},
		{name: "Windows <local>", hooks: wsproxy.TestHooks{System: &wsproxy.SystemSettings{Source: sysproxy.Windows, HTTP: &url.URL{Scheme: "http", Host: "h:1"}, BypassSimple: true}},
			url: "ws://intranet/", want: "DIRECT", wantSource: wsproxy.SourceWindows, reason: "plain host names"},
		{name: "OS mode none", hooks: wsproxy.TestHooks{System: &wsproxy.SystemSettings{Source: sysproxy.GNOME}},
			url: "ws://a.example/", want: "DIRECT", wantSource: wsproxy.SourceGNOME, reason: "proxy mode is none"},
		{name: "OS look-up fails: direct, and says so", hooks: wsproxy.TestHooks{SystemErr: errors.New("gsettings timed out")},
			url: "ws://a.example/", want: "DIRECT", wantSource: wsproxy.SourceNone, reason: "gsettings timed out"},
		// As browsers do, and as the environment does.
		{name: "loopback skips the OS settings", hooks: wsproxy.TestHooks{System: manual()},
			url: "ws://127.0.0.1:8080/", want: "DIRECT", wantSource: wsproxy.SourceNone, reason: "loopback"},
		{name: "localhost skips the OS settings", hooks: wsproxy.TestHooks{System: manual()},
			url: "wss://app.localhost/", want: "DIRECT", wantSource: wsproxy.SourceNone, reason: "loopback"},
		{name: "::1 skips the OS settings", hooks: wsproxy.TestHooks{System: manual()},
			url: "wss://[::1]:8443/", want: "DIRECT", wantSource: wsproxy.SourceNone, reason: "loopback"},
		{name: "nothing configured", hooks: wsproxy.TestHooks{},
			url: "ws://a.example/", want: "DIRECT", wantSource: wsproxy.SourceNone, reason: "no proxy configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &wsproxy.Dialer{}
			wsproxy.SetTestHooks(d, tc.hooks)
			if tc.explicit {
				d.Proxy = http.ProxyURL(&url.URL{Host: "explicit:9"})
			}
			dec, err := d.ProxyForURL(context.Background(), mustURL(t, tc.url))
			require.NoError(t, err)
			require.Equal(t, tc.want, proxies(dec), dec.String())
			require.Equal(t, tc.wantSource, dec.Source)
			require.Contains(t, dec.Reason, tc.reason)
		})
	}
}

func TestDecisionStringRedacts(t *testing.T) {
	t.Parallel()
	d := &wsproxy.Dialer{}
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{Env: map[string]string{"wss_proxy": "http://alice:" + testPassword + "@p:1"}})
	dec, err := d.ProxyForURL(context.Background(), mustURL(t, "wss://bob:targetpw@a.example/x"))
	require.NoError(t, err)
	assertNoSecrets(t, dec.String(), testPassword, "targetpw")
	require.Equal(t, "wss://a.example/x", dec.Target)
	require.Equal(t, "http://alice:xxxxx@p:1 (from environment: wss_proxy is set)", dec.String())
}

// pacServer serves PAC scripts by path and counts the fetches.
type pacServer struct {
	*httptest.Server
	fetches atomic.Int64
}

func newPACServer(t *testing.T, scripts map[string]string) *pacServer {
	t.Helper()
	s := &pacServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		src, ok := scripts[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
		fmt.Fprint(w, src)
	}))
	t.Cleanup(s.Close)
	return s
}

// A corporate-style PAC file, of the kind found in the wild.
const corporatePAC = `
// Corporate proxy configuration
var proxy = "PROXY proxy1.corp.example:8080; PROXY proxy2.corp.example:8080";
function FindProxyForURL(url, host) {
	host = host.toLowerCase();
	if (isPlainHostName(host) || dnsDomainIs(host, ".corp.example") || localHostOrDomainIs(host, "intranet.corp.example"))
		return "DIRECT";
	if (shExpMatch(host, "*.partner.example") || shExpMatch(url, "https://secure.*"))
		return "HTTPS secure-proxy.corp.example:443";
	if (isInNet(host, "10.0.0.0", "255.0.0.0") || isInNet(host, "192.168.0.0", "255.255.0.0"))
		return "DIRECT";
	if (isResolvable(host) && isInNet(dnsResolve(host), "172.16.0.0", "255.240.0.0"))
		return "DIRECT";
	if (shExpMatch(url, "http:*") && !isInNet(myIpAddress(), "10.0.0.0", "255.0.0.0"))
		return "SOCKS5 socks.corp.example:1080";
	if (weekdayRange("SAT", "SUN"))
		return "PROXY weekend.corp.example:8080; DIRECT";
	return proxy + "; DIRECT";
}`

// Real-world style PAC files over a local HTTP server.
func TestPACFromHTTPServer(t *testing.T) {
	t.Parallel()
	srv := newPACServer(t, map[string]string{
		"/corp.pac": corporatePAC,
		"/simple.pac": `function FindProxyForURL(url, host) {
			if (url.substring(0, 6) == "https:") return "PROXY tls-proxy:3128";
			return "PROXY plain-proxy:3128; DIRECT";
		}`,
		"/ex.pac": `function FindProxyForURLEx(url, host) {
			if (isInNetEx(dnsResolveEx(host).split(";")[0], "2001:db8::/32")) return "PROXY v6-proxy:3128";
			return "DIRECT";
		}`,
	})
	wednesday := time.Date(2025, 3, 12, 10, 0, 0, 0, time.UTC)
	saturday := time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)
	hosts := map[string][]string{
		"www.example.com": {"93.184.216.34"},
		"inside.example":  {"172.20.1.1"},
		"v6.example":      {"2001:db8::7", "192.0.2.7"},
	}
	for _, tc := range []struct {
		pac, url string
		now      time.Time
		myIP     string
		want     string
	}{
		{"/corp.pac", "wss://intranet/", wednesday, "10.1.1.1", "DIRECT"},
		{"/corp.pac", "wss://build.corp.example/", wednesday, "10.1.1.1", "DIRECT"},
		{"/corp.pac", "wss://api.partner.example/", wednesday, "10.1.1.1", "https://secure-proxy.corp.example:443"},
		{"/corp.pac", "wss://secure.example.net/", wednesday, "10.1.1.1", "https://secure-proxy.corp.example:443"},
		{"/corp.pac", "ws://10.9.9.9/", wednesday, "10.1.1.1", "DIRECT"},
		{"/corp.pac", "wss://inside.example/", wednesday, "10.1.1.1", "DIRECT"},
		{"/corp.pac", "ws://www.example.com/", wednesday, "192.168.5.5", "socks5h://socks.corp.example:1080"},
		{"/corp.pac", "wss://www.example.com/", saturday, "10.1.1.1", "http://weekend.corp.example:8080; DIRECT"},
		{"/corp.pac", "wss://www.example.com/", wednesday, "10.1.1.1", "http://proxy1.corp.example:8080; http://proxy2.corp.example:8080; DIRECT"},
		{"/simple.pac", "wss://a.example/", wednesday, "", "http://tls-proxy:3128"},
		{"/simple.pac", "ws://a.example/", wednesday, "", "http://plain-proxy:3128; DIRECT"},
		{"/ex.pac", "ws://v6.example/", wednesday, "", "http://v6-proxy:3128"},
	} {
		t.Run(tc.pac+" "+tc.url, func(t *testing.T) {
			t.Parallel()
			d := &wsproxy.Dialer{}
			wsproxy.SetTestHooks(d, wsproxy.TestHooks{
				System: &wsproxy.SystemSettings{Source: sysproxy.Windows, PACURL: srv.URL + tc.pac},
				Hosts:  hosts, MyIPs: []string{tc.myIP}, Now: tc.now,
			})
			dec, err := d.ProxyForURL(context.Background(), mustURL(t, tc.url))
			require.NoError(t, err)
			require.Equal(t, tc.want, proxies(dec), dec.String())
			require.Equal(t, srv.URL+tc.pac, dec.PAC)
			require.Equal(t, wsproxy.SourceWindows, dec.Source)
			require.Contains(t, dec.Reason, "FindProxyForURL returned")
		})
	}
}

// Broken PAC scripts fall through to the manual proxy, or direct, and say
// why; an endless loop does not hang the decision.
func TestPACFailuresFallThrough(t *testing.T) {
	t.Parallel()
	srv := newPACServer(t, map[string]string{
		"/loop.pac":   `function FindProxyForURL(url, host) { while (true) {} }`,
		"/syntax.pac": `function FindProxyForURL(url, host) { return "PROXY a:1" `,
		"/empty.pac":  `function FindProxyForURL(url, host) { return "SOCKS4 old:1080"; }`,
	})
	big := strings.Repeat("// padding\n", (1<<20)/10)
	bigFile := filepath.Join(t.TempDir(), "big.pac")
	require.NoError(t, os.WriteFile(bigFile, []byte(big), 0o644))
	for _, tc := range []struct {
		pac, reason string
		manual      bool
	}{
		{srv.URL + "/loop.pac", "time limit", false},
		{srv.URL + "/loop.pac", "time limit", true},
		{srv.URL + "/syntax.pac", "does not compile", true},
		{srv.URL + "/missing.pac", "404", false},
		{srv.URL + "/empty.pac", "no usable entry", false},
		{"file://" + bigFile, "larger than", false},
		{"ftp://pac.example/x.pac", "unsupported PAC URL scheme", false},
		{"http://127.0.0.1:1/refused.pac", "refused", false},
	} {
		t.Run(tc.pac+fmt.Sprint(tc.manual), func(t *testing.T) {
			t.Parallel()
			s := &wsproxy.SystemSettings{Source: sysproxy.KDE, PACURL: tc.pac}
			want := "DIRECT"
			if tc.manual {
				s.HTTP = &url.URL{Scheme: "http", Host: "fallback:3128"}
				want = "http://fallback:3128"
			}
			d := &wsproxy.Dialer{}
			wsproxy.SetTestHooks(d, wsproxy.TestHooks{System: s, PACLimit: 200 * time.Millisecond})
			start := time.Now()
			dec, err := d.ProxyForURL(context.Background(), mustURL(t, "ws://a.example/"))
			require.NoError(t, err)
			require.Less(t, time.Since(start), 5*time.Second)
			require.Equal(t, want, proxies(dec), dec.String())
			require.Contains(t, dec.Reason, tc.reason)
			require.Empty(t, dec.PAC)
		})
	}
}

// Compiled scripts are cached; InvalidateCache fetches them again.
func TestPACCache(t *testing.T) {
	// Not parallel: InvalidateCache is process-wide.
	srv := newPACServer(t, map[string]string{"/p.pac": `function FindProxyForURL(u, h) { return "PROXY p:1"; }`})
	d := &wsproxy.Dialer{}
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.MacOS, PACURL: srv.URL + "/p.pac"}})
	for range 3 {
		dec, err := d.ProxyForURL(context.Background(), mustURL(t, "ws://a.example/"))
		require.NoError(t, err)
		require.Equal(t, "http://p:1", proxies(dec))
	}
	require.EqualValues(t, 1, srv.fetches.Load())
	wsproxy.InvalidateCache()
	_, err := d.ProxyForURL(context.Background(), mustURL(t, "ws://a.example/"))
	require.NoError(t, err)
	require.EqualValues(t, 2, srv.fetches.Load())
}

// PAC "PROXY down; PROXY up; DIRECT": the dial fails over to the second
// proxy when the first refuses connections.
func TestPACFailoverDial(t *testing.T) {
	t.Parallel()
	echo := newEchoServer(t, false)
	up := proxytest.New(t, proxytest.Config{})
	down := closedAddr(t)
	srv := newPACServer(t, map[string]string{
		"/failover.pac": fmt.Sprintf(`function FindProxyForURL(url, host) { return "PROXY %s; PROXY %s; DIRECT"; }`, down, up.Addr),
		"/alldown.pac":  fmt.Sprintf(`function FindProxyForURL(url, host) { return "PROXY %s; SOCKS5 %s"; }`, down, down),
	})
	d := &wsproxy.Dialer{}
	logs := &logSink{}
	d.Logf = logs.Logf
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.GNOME, PACURL: srv.URL + "/failover.pac"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := d.Dial(ctx, echo.wsURL("/"), &websocket.DialOptions{Subprotocols: []string{"echo"}})
	require.NoError(t, err, logs.String())
	defer c.CloseNow()
	echoOnce(t, ctx, c, websocket.MessageText, []byte("through the second proxy"))
	require.Equal(t, 1, up.Accepts())
	require.Contains(t, logs.String(), "cannot be reached")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

	// Every proxy down, no DIRECT: the error names them all.
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.GNOME, PACURL: srv.URL + "/alldown.pac"}})
	_, _, err = d.Dial(ctx, echo.wsURL("/"), nil)
	require.ErrorContains(t, err, "every proxy failed")
	var pe *wsproxy.ProxyError
	require.ErrorAs(t, err, &pe)

	// A proxy that answers (here 407) ends the list: no failover to DIRECT.
	authUp := proxytest.New(t, proxytest.Config{Username: "alice", Password: testPassword})
	srv2 := newPACServer(t, map[string]string{"/auth.pac": fmt.Sprintf(`function FindProxyForURL(u, h) { return "PROXY %s; DIRECT"; }`, authUp.Addr)})
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, System: &wsproxy.SystemSettings{Source: sysproxy.GNOME, PACURL: srv2.URL + "/auth.pac"}})
	_, _, err = d.Dial(ctx, echo.wsURL("/"), nil)
	require.ErrorIs(t, err, wsproxy.ErrProxyAuthRequired)
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// WPAD: the script is looked for at wpad.<domain> up the search domain,
// found at the first that answers, and cached.
func TestWPADDiscovery(t *testing.T) {
	t.Parallel()
	srv := newPACServer(t, map[string]string{"/wpad.dat": `function FindProxyForURL(u, h) { return "PROXY from-wpad:8080"; }`})
	// A unique domain per run, so the process-wide WPAD cache is ours.
	domain := fmt.Sprintf("lab.wpadtest%d.example.com", time.Now().UnixNano())
	var asked []string
	d := &wsproxy.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		asked = append(asked, addr)
		if addr == "wpad.wpadtest"+strings.TrimPrefix(domain, "lab.wpadtest")+":80" {
			var nd net.Dialer
			return nd.DialContext(ctx, network, srv.Listener.Addr().String())
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("no such host")}
	}}
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{System: &wsproxy.SystemSettings{Source: sysproxy.Windows, AutoDetect: true}, SearchDomains: []string{domain}})
	for range 2 {
		dec, err := d.ProxyForURL(context.Background(), mustURL(t, "wss://a.example/"))
		require.NoError(t, err)
		require.Equal(t, "http://from-wpad:8080", proxies(dec), dec.String())
		require.Equal(t, "http://wpad."+strings.TrimPrefix(domain, "lab.")+"/wpad.dat", dec.PAC)
	}
	// wpad.lab..., then wpad.wpadtestN.example.com; never wpad.example.com's parent.
	require.Equal(t, []string{"wpad." + domain + ":80", "wpad." + strings.TrimPrefix(domain, "lab.") + ":80"}, asked)
	require.EqualValues(t, 1, srv.fetches.Load(), "cached")

	// No WPAD server anywhere: the manual settings apply, and the reason says so.
	d2 := &wsproxy.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("no such host")}
	}}
	wsproxy.SetTestHooks(d2, wsproxy.TestHooks{
		System:        &wsproxy.SystemSettings{Source: sysproxy.Windows, AutoDetect: true, HTTP: &url.URL{Scheme: "http", Host: "manual:1"}},
		SearchDomains: []string{fmt.Sprintf("nowpad%d.example.org", time.Now().UnixNano())},
	})
	dec, err := d2.ProxyForURL(context.Background(), mustURL(t, "ws://a.example/"))
	require.NoError(t, err)
	require.Equal(t, "http://manual:1", proxies(dec))
	require.Contains(t, dec.Reason, "no WPAD script found")
}

// End to end on Linux: GNOME settings written with the real gsettings send
// a dial through the real tinyproxy they name, and the Decision says so.
func TestPeersGNOMESettingsToTinyproxy(t *testing.T) {
	t.Parallel()
	bin := peertest.Require(t, "gsettings", "apt-get install -y libglib2.0-bin gsettings-desktop-schemas")
	proxy := peertest.Tinyproxy(t, "", "")
	echo := peertest.EchoServer(t)
	env := append(os.Environ(), "GSETTINGS_BACKEND=keyfile", "XDG_CONFIG_HOME="+t.TempDir())
	host, port, _ := strings.Cut(proxy, ":")
	for _, args := range [][]string{
		{"org.gnome.system.proxy", "mode", "manual"},
		{"org.gnome.system.proxy.http", "host", host},
		{"org.gnome.system.proxy.http", "port", port},
		{"org.gnome.system.proxy", "ignore-hosts", "['*.corp.example']"},
	} {
		cmd := exec.Command(bin, append([]string{"set"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "No such schema") {
			peertest.Missing(t, "the org.gnome.system.proxy schema (apt-get install -y gsettings-desktop-schemas)")
		}
		require.NoError(t, err, "%s", out)
	}
	var dialed []string
	d := &wsproxy.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr)
	}}
	wsproxy.SetTestHooks(d, wsproxy.TestHooks{ProxyLoopback: true, SystemFunc: func(ctx context.Context) (*wsproxy.SystemSettings, error) {
		return sysproxy.ReadGNOME(ctx, bin, env)
	}})

	dec, err := d.ProxyForURL(context.Background(), &url.URL{Scheme: "ws", Host: echo})
	require.NoError(t, err)
	require.Equal(t, wsproxy.SourceGNOME, dec.Source)
	require.Equal(t, "http://"+proxy, dec.Proxies[0].String())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", echo)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	require.Equal(t, []string{proxy}, dialed, "through the proxy GNOME names")

	dec, err = d.ProxyForURL(context.Background(), &url.URL{Scheme: "wss", Host: "build.corp.example"})
	require.NoError(t, err)
	require.True(t, dec.Direct(), dec.String())
}
