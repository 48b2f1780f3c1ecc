package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// rfbPage opens noVNC's RFB client against the WebSocket on the page's
// own host and records its events for bridge_novnc_rfb.mjs.
const rfbPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>wsproxy noVNC test</title></head>
<body><div id="screen"></div>
<script type="module">
import RFB from './core/rfb.js';
window.events = [];
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/websockify';
const rfb = new RFB(document.getElementById('screen'), url);
rfb.addEventListener('connect', () => window.events.push('connect'));
rfb.addEventListener('desktopname', (e) => window.events.push('name:' + e.detail.name));
rfb.addEventListener('disconnect', (e) => window.events.push('disconnect:' + (e.detail.clean ? 'clean' : 'unclean')));
rfb.addEventListener('securityfailure', (e) => window.events.push('securityfailure:' + e.detail.reason));
window.rfb = rfb;
</script></body></html>
`

// noVNCWebDir copies noVNC's core and vendor folders (from the pinned npm
// package) and rfbPage into a new folder, the --web root.
func noVNCWebDir(t *testing.T) string {
	t.Helper()
	src := filepath.Join(peertest.NodeModules(t), "@novnc", "novnc")
	dst := t.TempDir()
	for _, sub := range []string{"core", "vendor"} {
		require.NoError(t, os.CopyFS(filepath.Join(dst, sub), os.DirFS(filepath.Join(src, sub))))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dst, "rfb_test.html"), []byte(rfbPage), 0o644))
	return dst
}

type rfbResult struct {
	Events  []string `json:"events"`
	Console []string `json:"console"`
	Error   string   `json:"error"`
}

// TestNoVNCInChromium is the bridge's main use end to end: headless
// Chromium loads noVNC from the bridge's --web folder and its RFB client
// connects through the bridge to TigerVNC, reads the desktop name and
// disconnects cleanly. The same scenario runs against Debian's websockify
// and must behave the same.
func TestNoVNCInChromium(t *testing.T) {
	t.Parallel()
	chromium := peertest.Chromium(t)
	web := noVNCWebDir(t)
	vnc := peertest.Xtigervnc(t, "wsproxy-e2e")
	// noVNC reports the name from ServerInit before "connect".
	want := []string{"name:wsproxy-e2e", "connect", "disconnect:clean"}

	cert := peertest.SelfSigned(t)
	// Each starts a bridge serving web and returns the page's URL.
	bridges := map[string]func(t *testing.T) string{
		"wsbridge": func(t *testing.T) string {
			addr, _ := startBridge(t, "--web", web, vnc)
			return "http://" + addr
		},
		"wsbridge-tls": func(t *testing.T) string { // https:// and wss:// on the one port
			addr, _ := startBridge(t, "--web", web, "--cert", cert.PEMFile, vnc)
			return "https://" + addr
		},
		"websockify": func(t *testing.T) string {
			return "http://" + peertest.Websockify(t, vnc, "", "--web", web)
		},
	}
	for name, start := range bridges {
		t.Run(name, func(t *testing.T) {
			base := start(t)
			out := runNodeAllowFail(t, "bridge_novnc_rfb.mjs", chromium, base+"/rfb_test.html")
			var res rfbResult
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
			require.Empty(t, res.Error, "console: %s", strings.Join(res.Console, "\n"))
			assert.Equal(t, want, res.Events)
		})
	}
}
