package peertest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// HixieEchoServer starts npm websocket-driver as a WebSocket server that
// accepts Hixie-75, Hixie-76 and RFC 6455 ({allowDrafts: true}) on
// 127.0.0.1 and echoes every text message back, and returns its address.
// It is a third-party reference for the legacy protocol: a Hixie client
// that talks to it speaks the handshake and the framing correctly.
func HixieEchoServer(t testing.TB) string {
	t.Helper()
	NodeModules(t)
	node := Require(t, "node", "apt-get install -y nodejs")
	port := FreePort(t)
	script := filepath.Join(NodeDir(t), "hixie_echo_server.js")
	p := Start(t, "websocket-driver", []string{node, script, strconv.Itoa(port)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}
