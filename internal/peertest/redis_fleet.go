package peertest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisTLS starts redis-server with a plain port and a TLS port (the
// server certificate cert, no client certificate asked) and returns both
// addresses. A redis-server built without TLS ends the test through
// Missing.
func RedisTLS(t testing.TB, cert *Cert, password string) (plain, tlsAddr string) {
	t.Helper()
	bin := Require(t, "redis-server", "apt-get install -y redis-server")
	port, tlsPort := FreePort(t), FreePort(t)
	argv := []string{bin, "--port", strconv.Itoa(port), "--tls-port", strconv.Itoa(tlsPort),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--protected-mode", "no",
		"--tls-cert-file", cert.CertFile, "--tls-key-file", cert.KeyFile, "--tls-ca-cert-file", cert.CertFile,
		"--tls-auth-clients", "no"}
	if password != "" {
		argv = append(argv, "--requirepass", password)
	}
	p := Start(t, "redis-server (TLS)", argv)
	plain = fmt.Sprintf("127.0.0.1:%d", port)
	tlsAddr = fmt.Sprintf("127.0.0.1:%d", tlsPort)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", tlsAddr, 200*time.Millisecond); err == nil {
			c.Close()
			return plain, tlsAddr
		}
		if p.Exited() {
			if out := p.Output(); strings.Contains(out, "TLS") {
				Missing(t, "redis-server was built without TLS support: "+strings.TrimSpace(out))
			}
			t.Fatalf("peertest: redis-server (TLS) exited:\n%s", p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("peertest: redis-server (TLS) not listening on %s:\n%s", tlsAddr, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RedisSentinel starts a Redis Sentinel (redis-server --sentinel)
// watching the master named name at masterAddr, and returns its address.
func RedisSentinel(t testing.TB, name, masterAddr, masterPassword string) string {
	t.Helper()
	bin := Require(t, "redis-server", "apt-get install -y redis-server")
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		t.Fatalf("peertest: sentinel: %v", err)
	}
	sport := FreePort(t)
	dir := t.TempDir()
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 5000\n",
		sport, dir, name, host, port, name)
	if masterPassword != "" {
		conf += fmt.Sprintf("sentinel auth-pass %s %s\n", name, masterPassword)
	}
	file := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites its configuration: a file of its own
	WriteFile(t, file, conf, 0o600)
	p := Start(t, "redis-sentinel", []string{bin, file, "--sentinel"})
	addr := fmt.Sprintf("127.0.0.1:%d", sport)
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}

// RedisCluster starts a one-node Redis Cluster that owns every hash slot
// and returns its address once the cluster state is ok.
func RedisCluster(t testing.TB) string {
	t.Helper()
	bin := Require(t, "redis-server", "apt-get install -y redis-server")
	port := FreePort(t)
	dir := t.TempDir()
	p := Start(t, "redis-server (cluster)", []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf")})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitTCP(t, addr, 10*time.Second)
	RedisText(t, addr, "", "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(RedisText(t, addr, "", "CLUSTER", "INFO"), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatalf("peertest: redis cluster at %s not ok:\n%s", addr, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr
}

// RedisText sends one command (after AUTH when password is set) and
// returns its answer: a bulk string's contents (INFO, CLUSTER INFO, CLIENT
// LIST), else the reply line without its type character; it fails the test
// on an error reply.
func RedisText(t testing.TB, addr, password string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("peertest: redis: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if password != "" {
		args = append([]string{"AUTH", password}, args...)
		if _, err := readRedisText(c, br, args[:2]); err != nil {
			t.Fatalf("peertest: redis AUTH: %v", err)
		}
		args = args[2:]
	}
	text, err := readRedisText(c, br, args)
	if err != nil {
		t.Fatalf("peertest: redis %s: %v", args[0], err)
	}
	return text
}

func readRedisText(w io.Writer, br *bufio.Reader, args []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("%s", line)
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return line[min(1, len(line)):], nil
	}
}
