package peertest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// WebsockifyTokens starts Debian's websockify on 127.0.0.1 with a token
// plugin instead of a fixed target (--token-plugin plugin --token-source
// source) and returns its listen address. The plugins' Python modules
// (python3-jwcrypto for JWTTokenApi, python3-redis and python3-simplejson
// for TokenRedis) must be installed; websockify refuses every token
// without them, which a test sees as a wrong verdict, not a skip.
func WebsockifyTokens(t testing.TB, plugin, source string, extra ...string) string {
	t.Helper()
	bin := Require(t, "websockify", "apt-get install -y websockify")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	argv := append([]string{bin, "--token-plugin", plugin, "--token-source", source}, extra...)
	p := Start(t, "websockify-"+plugin, append(argv, addr))
	p.WaitTCP(t, addr, 15*time.Second)
	return addr
}
