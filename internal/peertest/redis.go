package peertest

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// Redis starts redis-server on 127.0.0.1 with no persistence and returns
// its address. With a non-empty password it requires AUTH.
func Redis(t testing.TB, password string) string {
	t.Helper()
	bin := Require(t, "redis-server", "apt-get install -y redis-server")
	port := FreePort(t)
	argv := []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--protected-mode", "no"}
	if password != "" {
		argv = append(argv, "--requirepass", password)
	}
	p := Start(t, "redis-server", argv)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}
