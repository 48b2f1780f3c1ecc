package peertest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HAProxySendProxy starts HAProxy in TCP mode on 127.0.0.1 and returns
// its address: every connection is forwarded to backend preceded by a
// PROXY protocol header of the given version (1: send-proxy, 2:
// send-proxy-v2) naming the client's address as HAProxy saw it.
func HAProxySendProxy(t testing.TB, backend string, version int) string {
	t.Helper()
	opt := "send-proxy"
	if version == 2 {
		opt = "send-proxy-v2"
	}
	addr, _ := startHAProxyTCP(t, "", "server s1 "+backend+" "+opt)
	return addr
}

// HAProxyAcceptProxy starts HAProxy in TCP mode on 127.0.0.1 as a real
// PROXY protocol receiver: every connection must start with a v1 or v2
// header (accept-proxy), and is then forwarded to backend. For each
// connection HAProxy prints a line "client=IP:PORT" with the address it
// read from the header; WaitPrinted waits for one.
func HAProxyAcceptProxy(t testing.TB, backend string) (string, *Process) {
	t.Helper()
	return startHAProxyTCP(t, "accept-proxy", "server s1 "+backend)
}

// startHAProxyTCP runs one TCP frontend (bind options bindOpts) to one
// server line, logging each connection's client address to stdout. A
// port taken between FreePort and HAProxy's bind is retried with new ones.
func startHAProxyTCP(t testing.TB, bindOpts, server string) (string, *Process) {
	t.Helper()
	bin := Require(t, "haproxy", "apt-get install -y haproxy")
	for attempt := 1; ; attempt++ {
		port, readyPort := FreePort(t), FreePort(t)
		cfg := fmt.Sprintf(`global
    log stdout format raw local0
    maxconn 256
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 1m
    timeout server 1m
    timeout tunnel 1h
frontend ready
    bind 127.0.0.1:%d
    tcp-request connection reject
frontend fe
    bind 127.0.0.1:%d %s
    option logasap
    log-format "client=%%ci:%%cp"
    default_backend be
backend be
    %s
`, readyPort, port, bindOpts, server)
		file := filepath.Join(t.TempDir(), "haproxy.cfg")
		WriteFile(t, file, cfg, 0o644)
		p := Start(t, "haproxy", []string{bin, "-f", file, "-db"})
		// The ready frontend accepts (and drops) once every bind is done,
		// so probing it sends nothing through the one under test.
		if waitListening(p, fmt.Sprintf("127.0.0.1:%d", readyPort), 10*time.Second) {
			return fmt.Sprintf("127.0.0.1:%d", port), p
		}
		if !p.Exited() || !strings.Contains(p.Output(), "cannot bind") || attempt == 3 {
			t.Fatalf("peertest: haproxy did not start:\n%s", p.Output())
		}
	}
}

// waitListening reports whether addr accepts connections before timeout
// and before p exits.
func waitListening(p *Process, addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		if p.Exited() {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// WaitPrinted waits until the process has printed substr, failing the test
// with its output after timeout or when it exits.
func (p *Process) WaitPrinted(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), substr) {
		if p.Exited() {
			t.Fatalf("peer %s exited before printing %q: %v\n%s", p.Name, substr, p.err, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer %s did not print %q within %v\n%s", p.Name, substr, timeout, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
