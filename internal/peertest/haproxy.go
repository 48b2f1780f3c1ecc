package peertest

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HAProxyServer is one server of the backend HAProxy balances.
type HAProxyServer struct {
	Name      string // server name in HAProxy's config and stats ("b1")
	Addr      string // where connections go, "127.0.0.1:port"
	CheckPort int    // port of the HTTP health check (CheckPath), on Addr's host
	// Options are extra server keywords, for example "send-proxy-v2".
	Options string
}

// HAProxyOptions configure StartHAProxy.
type HAProxyOptions struct {
	Servers []HAProxyServer
	// CheckPath is the HTTP health check ("option httpchk GET CheckPath",
	// sent to each server's CheckPort); a server answering anything but
	// 2xx or 3xx is marked DOWN. Empty means "/readyz".
	CheckPath string
	// CheckInterval is the time between checks; zero means 200ms. One
	// failed check marks a server DOWN, two good ones UP again.
	CheckInterval time.Duration
}

// HAProxy is a running haproxy in TCP mode: one frontend on Addr balancing
// round robin over the servers, with HTTP health checks.
type HAProxy struct {
	Addr   string // the frontend, "127.0.0.1:port"
	Dir    string // configuration and stats socket
	socket string
	proc   *Process
}

// StartHAProxy starts Debian's haproxy in the foreground (-db) with
// HAProxyConfig and waits until its frontend accepts connections.
func StartHAProxy(t testing.TB, o HAProxyOptions) *HAProxy {
	t.Helper()
	bin := Require(t, "haproxy", "apt-get install -y haproxy")
	dir := t.TempDir()
	h := &HAProxy{Dir: dir, socket: filepath.Join(dir, "admin.sock")}
	h.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	path := filepath.Join(dir, "haproxy.cfg")
	WriteFile(t, path, HAProxyConfig(h.Addr, h.socket, o), 0o644)
	h.proc = Start(t, "haproxy", []string{bin, "-db", "-f", path})
	h.proc.WaitTCP(t, h.Addr, 10*time.Second)
	return h
}

// HAProxyConfig is a TCP-mode configuration: a frontend on addr, a
// backend "bridges" balancing round robin over o.Servers with HTTP
// checks, "timeout tunnel 1h" for long-lived WebSocket connections,
// redispatch on a failed connect, and an admin stats socket.
func HAProxyConfig(addr, socket string, o HAProxyOptions) string {
	path := o.CheckPath
	if path == "" {
		path = "/readyz"
	}
	inter := o.CheckInterval
	if inter <= 0 {
		inter = 200 * time.Millisecond
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket %s mode 600 level admin
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 1m
    timeout server 1m
    timeout tunnel 1h
    timeout check 1s
    retries 3
    option redispatch

frontend websockets
    bind %s
    default_backend bridges

backend bridges
    balance roundrobin
    option httpchk GET %s
    default-server inter %dms fall 1 rise 2
`, socket, addr, path, inter.Milliseconds())
	for _, s := range o.Servers {
		fmt.Fprintf(&b, "    server %s %s check port %d %s\n", s.Name, s.Addr, s.CheckPort, s.Options)
	}
	return b.String()
}

// ServerStatus returns a server's status from the stats socket's "show
// stat": "UP", "DOWN", or a transition such as "UP 1/2".
func (h *HAProxy) ServerStatus(t testing.TB, name string) string {
	t.Helper()
	rows := h.showStat(t)
	if len(rows) == 0 {
		t.Fatalf("peertest: haproxy show stat: no header")
	}
	header := rows[0]
	col := map[string]int{}
	for i, c := range header {
		col[strings.TrimPrefix(c, "# ")] = i
	}
	for _, r := range rows[1:] {
		if len(r) > col["status"] && r[col["pxname"]] == "bridges" && r[col["svname"]] == name {
			return r[col["status"]]
		}
	}
	t.Fatalf("peertest: haproxy: no server %q in show stat", name)
	return ""
}

func (h *HAProxy) showStat(t testing.TB) [][]string {
	t.Helper()
	c, err := net.DialTimeout("unix", h.socket, 5*time.Second)
	if err != nil {
		t.Fatalf("peertest: haproxy stats socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		t.Fatalf("peertest: haproxy stats socket: %v", err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("peertest: haproxy stats socket: %v", err)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimSpace(string(out))))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("peertest: haproxy show stat: %v\n%s", err, out)
	}
	return rows
}
