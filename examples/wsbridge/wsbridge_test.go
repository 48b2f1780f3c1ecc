package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBridge runs wsbridge in process with args (the listen address is
// prepended as 127.0.0.1:0) and returns its address and log.
func startBridge(t *testing.T, args ...string) (string, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"127.0.0.1:0"}, args...), logs, func(a net.Addr) { addrCh <- a.String() })
	}()
	select {
	case addr := <-addrCh:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("wsbridge: %v", err)
			}
			if t.Failed() {
				t.Logf("wsbridge log:\n%s", logs)
			}
		})
		return addr, logs
	case err := <-done:
		cancel()
		t.Fatalf("wsbridge did not start: %v\n%s", err, logs)
	}
	return "", nil
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, []flagCase{
		{args: []string{"6080", "localhost:5900"}, listen: ":6080", target: "localhost:5900"},
		{args: []string{"127.0.0.1:6080", "[::1]:5900"}, listen: "127.0.0.1:6080", target: "[::1]:5900"},
		{args: []string{"[::1]:6080", "h:1"}, listen: "[::1]:6080", target: "h:1"},
		{args: []string{"6080", "h:1", "--heartbeat", "30", "-v"}, listen: ":6080", target: "h:1"}, // options after positionals
		{args: []string{"--web", "/tmp", "6080", "--idle-timeout=5", "h:1"}, listen: ":6080", target: "h:1"},
		{args: []string{"--token-plugin", "TokenFile", "--token-source", "/x", "6080"}, listen: ":6080"},
		{args: []string{"--unix-target", "/run/s", "6080"}, listen: ":6080"},
		{args: []string{"6080"}, err: "missing target"},
		{args: []string{}, err: "missing source port"},
		{args: []string{"::1:6080", "h:1"}, err: "IPv6 in brackets"},
		{args: []string{"6080", "::1:5900"}, err: "IPv6 in brackets"},
		{args: []string{"6080", "h:99999"}, err: "bad port"},
		{args: []string{"--host-token", "6080", "h:1"}, err: "--host-token needs --token-plugin"},
		{args: []string{"--token-plugin", "TokenFile", "6080"}, err: "needs --token-source"},
		{args: []string{"--auth-source", "a:b", "6080", "h:1"}, err: "needs --auth-plugin"},
		{args: []string{"6080", "h:1", "x"}, err: "too many"},
		{args: []string{"--log-format", "xml", "6080", "h:1"}, err: "want text or json"},
		{args: []string{"--metrics-listen", "9100", "6080", "h:1"}, err: "--metrics-listen"},
		{args: []string{"--drain-delay", "-1", "6080", "h:1"}, err: "negative"},
	})
	o, err := parseFlags([]string{"--heartbeat", "2.5", "--idle-timeout", "90s", "6080", "h:1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 2500*time.Millisecond, o.heartbeat)
	assert.Equal(t, 90*time.Second, o.idleTimeout)
}

func TestBadConfigurations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"127.0.0.1:0", "--token-plugin", "TokenRedis", "--token-source", "127.0.0.1:6379"}, "needs --allow-target"},
		{[]string{"127.0.0.1:0", "--token-plugin", "Nope", "--token-source", "x"}, "unknown --token-plugin"},
		{[]string{"127.0.0.1:0", "--auth-plugin", "Nope", "h:1"}, "unknown --auth-plugin"},
		{[]string{"127.0.0.1:0", "--auth-plugin", "BasicHTTPAuth", "h:1"}, "user:password"},
		{[]string{"127.0.0.1:0", "--web", "/nonexistent/dir", "h:1"}, "--web"},
		{[]string{"127.0.0.1:0", "--cert", "/nonexistent.pem", "h:1"}, "--cert"},
	} {
		err := run(context.Background(), tc.args, io.Discard, nil)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.err)
	}
}

// runNode runs one of the Node scripts in testdata/node and returns its
// standard output.
func runNode(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := nodeOutput(t, script, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runNodeAllowFail is runNode returning standard output even when the
// script exits non-zero (scripts that report failures as JSON).
func runNodeAllowFail(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := nodeOutput(t, script, args...)
	if err != nil {
		t.Log(err)
	}
	return out
}

func nodeOutput(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	peertest.NodeModules(t)
	node := peertest.Require(t, "node", "apt-get install -y nodejs")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(peertest.NodeDir(t), script)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("node %s: %v\nstdout: %s\nstderr: %s", script, err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// TestNodeClients echoes through wsbridge to a TCP echo with real
// clients: npm ws (binary, no subprotocol, base64) and noVNC's
// core/websock.js.
func TestNodeClients(t *testing.T) {
	t.Parallel()
	addr, logs := startBridge(t, peertest.EchoServer(t))
	url := "ws://" + addr + "/websockify"
	for _, tc := range []struct{ mode, want string }{
		{"binary", "OK 300000 binary 1000"},
		{"none", "OK 300000 - 1000"},
		{"base64", "OK 300000 base64 1000"},
	} {
		assert.Equal(t, tc.want, runNode(t, "bridge_ws_echo.mjs", url, tc.mode, "300000"), tc.mode)
	}
	assert.Equal(t, "OK 200000 binary", runNode(t, "bridge_websock_echo.mjs", url, "200000"))
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "connection closed") == 4 }, 5*time.Second, 20*time.Millisecond)
	assert.Contains(t, logs.String(), "subprotocol=base64")
	assert.Contains(t, logs.String(), "from_client=300000 to_client=300000")
}

// TestTokenFileCLI: --token-plugin TokenFile with ?token=.
func TestTokenFileCLI(t *testing.T) {
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("a: "+peertest.EchoServer(t)+"\n"), 0o644))
	addr, _ := startBridge(t, "--token-plugin", "TokenFile", "--token-source", tokens)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/?token=a", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("tok")))
	_, p, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "tok", string(p))

	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/?token=b", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestDialerThroughTinyproxy: this module's Dialer reaches wsbridge
// through a real CONNECT proxy.
func TestDialerThroughTinyproxy(t *testing.T) {
	t.Parallel()
	proxy := peertest.Tinyproxy(t, "alice", "s3cret")
	addr, _ := startBridge(t, peertest.EchoServer(t))
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy, User: url.UserPassword("alice", "s3cret")})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := d.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
	require.NoError(t, err)
	defer c.CloseNow()
	assert.Equal(t, "binary", c.Subprotocol())
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("via tinyproxy")))
	_, p, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "via tinyproxy", string(p))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}

var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// binary builds wsbridge once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wsbridge-test")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "wsbridge")
		buildOnce.out, buildOnce.err = exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("go build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// TestSignals: SIGTERM stops accepting and lets an open connection go on
// until a second signal, which closes it with 1001; the process exits 0.
func TestSignals(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(peertest.FreePort(t)))
	out := &syncBuf{}
	cmd := exec.Command(bin, addr, peertest.EchoServer(t))
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("wsbridge output:\n%s", out)
		}
	})
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); readErr <- err }()

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "shutting down") }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-readErr:
		t.Fatalf("open connection closed at the first signal: %v", err)
	default:
	}
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "the listener is closed after the first signal")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(<-readErr))
	select {
	case err := <-exited:
		exited <- err
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("wsbridge did not exit")
	}
	assert.Contains(t, out.String(), "wsbridge: stopped")
}

// flagCase is a command line and what parseFlags makes of it: the listen
// address and target, or an error containing err.
type flagCase struct {
	args           []string
	listen, target string
	err            string
}

// checkFlags runs parseFlags on each case.
func checkFlags(t *testing.T, cases []flagCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.listen, o.listen)
			assert.Equal(t, tc.target, o.target)
		})
	}
}
