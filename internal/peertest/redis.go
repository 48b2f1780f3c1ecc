package peertest

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
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

// RedisDo sends one command to the Redis server at addr (after AUTH when
// password is set) and returns the first line of the reply; it fails the
// test on an error reply.
func RedisDo(t testing.TB, addr, password string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("peertest: redis: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	do := func(args ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write([]byte(b.String())); err != nil {
			t.Fatalf("peertest: redis: %v", err)
		}
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("peertest: redis: %v", err)
		}
		if strings.HasPrefix(line, "-") {
			t.Fatalf("peertest: redis %s: %s", args[0], strings.TrimSpace(line))
		}
		return strings.TrimSpace(line)
	}
	if password != "" {
		do("AUTH", password)
	}
	return do(args...)
}
