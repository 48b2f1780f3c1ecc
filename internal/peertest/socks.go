package peertest

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Microsocks starts microsocks (a small SOCKS5 server) on 127.0.0.1 and
// returns its address. With a non-empty user it requires RFC 1929
// username/password authentication.
func Microsocks(t testing.TB, user, pass string) string {
	t.Helper()
	bin := Require(t, "microsocks", "apt-get install -y microsocks")
	port := FreePort(t)
	argv := []string{bin, "-i", "127.0.0.1", "-p", strconv.Itoa(port)}
	if user != "" {
		argv = append(argv, "-u", user, "-P", pass)
	}
	p := Start(t, "microsocks", argv)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}

// Dante starts Dante's SOCKS server (danted) on 127.0.0.1 without
// authentication and returns its address.
func Dante(t testing.TB) string {
	t.Helper()
	bin := Require(t, "danted", "apt-get install -y dante-server")
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "danted.conf")
	WriteFile(t, conf, DanteConfig(port, filepath.Join(dir, "danted.log")), 0o644)
	p := Start(t, "danted", []string{bin, "-f", conf, "-N", "1", "-p", filepath.Join(dir, "danted.pid")})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}

// DanteConfig is a danted configuration listening on 127.0.0.1:port that
// lets loopback clients reach loopback targets without authentication.
func DanteConfig(port int, logFile string) string {
	return fmt.Sprintf(`logoutput: %s
internal: 127.0.0.1 port = %d
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
	from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
	from: 127.0.0.0/8 to: 127.0.0.0/8
	command: connect
}
socks block {
	from: 0.0.0.0/0 to: 0.0.0.0/0
}
`, logFile, port)
}

// TLSFront starts socat terminating TLS (OpenSSL) with cert on 127.0.0.1
// and relaying the plain bytes to backend: in front of an HTTP proxy it
// makes an HTTPS proxy. It returns the TLS address.
func TLSFront(t testing.TB, cert *Cert, backend string) string {
	t.Helper()
	bin := Require(t, "socat", "apt-get install -y socat")
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	listen := fmt.Sprintf("OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,verify=0", port, cert.CertFile, cert.KeyFile)
	p := Start(t, "socat", []string{bin, listen, "TCP:" + backend})
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}
