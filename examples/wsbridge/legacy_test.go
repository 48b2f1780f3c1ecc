package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// legacyWSEcho echoes one message over RFC 6455 with the subprotocol.
func legacyWSEcho(url string, tlsConf *tls.Config, proto string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer client.CloseIdleConnections()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client, Subprotocols: []string{proto}})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	want := []byte("RFB 003.008\n\x00\xff")
	typ, msg := websocket.MessageBinary, want
	if proto == "base64" {
		typ, msg = websocket.MessageText, []byte(base64.StdEncoding.EncodeToString(want))
	}
	if err := c.Write(ctx, typ, msg); err != nil {
		return err
	}
	var got []byte
	for len(got) < len(want) {
		_, m, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if proto == "base64" {
			text := string(m)
			if strings.Contains(url, "seq_num") {
				var num string
				num, text, _ = strings.Cut(text, ":")
				if _, err := strconv.Atoi(num); err != nil {
					return fmt.Errorf("no sequence number in %q", m)
				}
			}
			if m, err = base64.StdEncoding.DecodeString(text); err != nil {
				return err
			}
		}
		got = append(got, m...)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo %q", got)
	}
	return c.Close(websocket.StatusNormalClosure, "")
}

func legacyPolicy(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "<policy-file-request/>\x00")
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestLegacyHixieCLI: Hixie-75 and -76 through wsbridge to a TCP echo,
// with and without seq_num.
func TestLegacyHixieCLI(t *testing.T) {
	t.Parallel()
	addr, _ := startBridge(t, peertest.EchoServer(t))
	big := bytes.Repeat([]byte{0, 0xff, 'A'}, 30_000)
	for _, v := range []hixie.Version{hixie.Hixie75, hixie.Hixie76} {
		for _, path := range []string{"/", "/?seq_num", "/websockify?seq_num=1"} {
			hixietest.Echo(t, addr, hixietest.Options{Version: v, Path: path, Protocol: "base64"}, []byte("RFB 003.008\n"), big)
		}
	}
	if err := legacyWSEcho("ws://"+addr+"/?seq_num", nil, "base64"); err != nil {
		t.Errorf("RFC 6455 base64 with seq_num: %v", err)
	}
}

// TestLegacyOnePortCLI: wss://, ws://, Hixie over TLS and the Flash policy
// on one wsbridge port; --ssl-only refuses plain connections.
func TestLegacyOnePortCLI(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	echo := peertest.EchoServer(t)
	tlsConf := &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"}
	addr, _ := startBridge(t, "--cert", cert.CertFile, "--key", cert.KeyFile, echo)
	if err := legacyWSEcho("wss://"+addr+"/", tlsConf, "binary"); err != nil {
		t.Errorf("wss: %v", err)
	}
	if err := legacyWSEcho("ws://"+addr+"/", nil, "binary"); err != nil {
		t.Errorf("ws: %v", err)
	}
	hixietest.Echo(t, addr, hixietest.Options{Version: hixie.Hixie76, Path: "/?seq_num", TLS: tlsConf}, []byte("hixie over tls"))
	want := `<cross-domain-policy><allow-access-from domain="*" to-ports="*" /></cross-domain-policy>` + "\x00"
	if got := legacyPolicy(t, addr); got != want {
		t.Errorf("policy %q, want %q", got, want)
	}

	custom, _ := startBridge(t, "--flash-policy-domain", "vnc.example.com", "--flash-policy-ports", "5900-5910", echo)
	want = `<cross-domain-policy><allow-access-from domain="vnc.example.com" to-ports="5900-5910" /></cross-domain-policy>` + "\x00"
	if got := legacyPolicy(t, custom); got != want {
		t.Errorf("custom policy %q, want %q", got, want)
	}

	sslOnly, logs := startBridge(t, "--cert", cert.CertFile, "--key", cert.KeyFile, "--ssl-only", echo)
	if err := legacyWSEcho("ws://"+sslOnly+"/", nil, "binary"); err == nil {
		t.Error("ws:// served under --ssl-only")
	}
	if err := legacyWSEcho("wss://"+sslOnly+"/", tlsConf, "binary"); err != nil {
		t.Errorf("wss under --ssl-only: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "--ssl-only") {
		if time.Now().After(deadline) {
			t.Fatalf("refusal not logged:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLegacyRecordAndTrafficCLI: --record writes FILE.1 that noVNC's
// rules read back (Node runs it as a script), --traffic prints the legend.
func TestLegacyRecordAndTrafficCLI(t *testing.T) {
	t.Parallel()
	node := peertest.Require(t, "node", "apt-get install -y nodejs")
	base := filepath.Join(t.TempDir(), "session")
	addr, logs := startBridge(t, "--record", base, "--traffic", peertest.EchoServer(t))
	if err := legacyWSEcho("ws://"+addr+"/", nil, "binary"); err != nil {
		t.Fatal(err)
	}
	hixietest.Echo(t, addr, hixietest.Options{Version: hixie.Hixie76}, []byte("RFB 003.008\n\x00\xff"))
	want := fmt.Sprintf("%x", "RFB 003.008\n\x00\xff")
	for _, file := range []string{base + ".1", base + ".2"} {
		var frames []struct {
			FromClient bool   `json:"fromClient"`
			Hex        string `json:"hex"`
		}
		var up, down string
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, err := exec.Command(node, filepath.Join("..", "..", "bridge", "testdata", "record_reader.js"), file).CombinedOutput()
			if err == nil && json.Unmarshal(out, &frames) == nil {
				up, down = "", ""
				for _, f := range frames {
					if f.FromClient {
						up += f.Hex
					} else {
						down += f.Hex
					}
				}
				if up == want && down == want {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: up %s down %s, want %s both ways (%v)\n%s", file, up, down, want, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s := logs.String(); !strings.Contains(s, "Traffic Legend:") || !strings.Contains(s, "}>{<") {
		t.Errorf("no traffic legend:\n%s", s)
	}
}

// TestLegacyRunOnceCLI: --run-once returns after its one connection.
func TestLegacyRunOnceCLI(t *testing.T) {
	t.Parallel()
	logs := &syncBuf{}
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"--run-once", "127.0.0.1:0", peertest.EchoServer(t)}, logs,
			func(a net.Addr) { addrCh <- a.String() })
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("did not start: %v\n%s", err, logs)
	}
	if err := legacyWSEcho("ws://"+addr+"/", nil, "binary"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still serving after its one connection:\n%s", logs)
	}
}

func TestLegacyFlagChecks(t *testing.T) {
	t.Parallel()
	for args, want := range map[string]string{
		"--ssl-only 6080 h:1":             "--ssl-only needs --cert",
		"--record-limit 10 6080 h:1":      "--record-limit needs --record",
		"--flash-policy-ports x 6080 h:1": "",
	} {
		_, err := parseFlags(strings.Fields(args), io.Discard)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	// A bad policy is refused when the listener is built.
	if err := run(context.Background(), []string{"--flash-policy-ports", `1"/>`, "127.0.0.1:0", "127.0.0.1:1"}, io.Discard, nil); err == nil {
		t.Error("bad --flash-policy-ports accepted")
	}
}

// TestLegacyDaemonCLI: -D returns once the detached child listens, the
// child serves, writes --pid-file and --log-file, and removes the PID
// file on SIGTERM; -D on a busy port fails in the foreground.
func TestLegacyDaemonCLI(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dir := t.TempDir()
	pidFile, logFile := filepath.Join(dir, "wsbridge.pid"), filepath.Join(dir, "wsbridge.log")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(peertest.FreePort(t)))
	out, err := exec.Command(bin, "-D", "--pid-file", pidFile, "--log-file", logFile, addr, peertest.EchoServer(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("wsbridge -D: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	proc, _ := os.FindProcess(pid)
	t.Cleanup(func() { _ = proc.Signal(syscall.SIGKILL) })
	if err := legacyWSEcho("ws://"+addr+"/", nil, "binary"); err != nil {
		t.Fatalf("the daemon does not serve: %v", err)
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("PID file left after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if log, _ := os.ReadFile(logFile); !strings.Contains(string(log), "wsbridge: listening") {
		t.Errorf("log file lacks the daemon's log:\n%s", log)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err = exec.Command(bin, "-D", l.Addr().String(), "127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Errorf("-D on a busy port: %v\n%s", err, out)
	}
}
