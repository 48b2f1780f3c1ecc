package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wsproxy/wsproxy/internal/peertest"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runWsdial runs the command in-process and returns its exit code, output
// and error output.
func runWsdial(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemo(t *testing.T) {
	t.Parallel()
	code, out, errOut := runWsdial(t, strings.NewReader(""), "-demo")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "refused as expected")
	require.Contains(t, out, "used 1 TCP connection(s) to the proxy")
	require.Contains(t, out, "demo OK")
	require.NotContains(t, out, "GET ")
}

func TestTextLinesThroughProxy(t *testing.T) {
	t.Parallel()
	echo, err := startEcho()
	require.NoError(t, err)
	defer echo.Close()
	p := proxytest.New(t, proxytest.Config{Username: "alice", Password: "pw"})
	in := "first line\nsecond line\nthe last line's echo must not be lost\n"
	code, out, errOut := runWsdial(t, strings.NewReader(in),
		"-proxy", p.URL.String(), "-proxy-user", "alice:pw", "-linger", "2s", "-v",
		"ws://"+echo.Addr().String()+"/echo")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, in, out)
	require.Contains(t, errOut, "Proxy-Authorization: Basic [redacted]")
	require.NotContains(t, errOut, ":pw")
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	echo, err := startEcho()
	require.NoError(t, err)
	defer echo.Close()
	p := proxytest.New(t, proxytest.Config{Username: "alice", Password: "right"})
	target := "ws://" + echo.Addr().String() + "/"

	code, _, errOut := runWsdial(t, strings.NewReader("x\n"), "-proxy", p.URL.String(), "-proxy-user", "alice:wrong-pass", target)
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	require.Contains(t, errOut, "rejected the credentials")
	require.NotContains(t, errOut, "wrong-pass")

	code, out, errOut := runWsdial(t, strings.NewReader("direct\n"), "-proxy", "direct", "-linger", "2s", target)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "direct\n", out)

	code, _, errOut = runWsdial(t, strings.NewReader(""), "ftp://x/")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "unsupported URL scheme")

	code, _, _ = runWsdial(t, strings.NewReader(""))
	require.Equal(t, 2, code)
}

// wsdial -binary as a byte pipe through tinyproxy and squid (Basic) to
// websockify, for ws:// and wss://.
func TestPeersBinaryPipeThroughRealProxies(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	echo := peertest.EchoServer(t)
	targets := map[string]string{
		"ws":  "ws://" + peertest.Websockify(t, echo, "") + "/",
		"wss": "wss://" + peertest.Websockify(t, echo, cert.PEMFile) + "/",
	}
	proxies := map[string]func(*testing.T) string{
		"tinyproxy": func(t *testing.T) string { return peertest.Tinyproxy(t, "alice", "s3cret") },
		"squid":     func(t *testing.T) string { return peertest.StartSquid(t, peertest.SquidBasic, "alice", "s3cret").Addr },
	}
	for name, start := range proxies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			proxy := start(t)
			for scheme, target := range targets {
				t.Run(scheme, func(t *testing.T) {
					t.Parallel()
					data := make([]byte, 300<<10)
					_, _ = rand.Read(data)
					code, out, errOut := runWsdial(t, bytes.NewReader(data),
						"-binary", "-subprotocol", "binary", "-linger", "2s", "-cacert", cert.CertFile,
						"-proxy", (&url.URL{Scheme: "http", Host: proxy}).String(), "-proxy-user", "alice:s3cret",
						target)
					require.Equal(t, 0, code, errOut)
					require.True(t, bytes.Equal(data, []byte(out)), "got %d bytes back, want %d", len(out), len(data))
				})
			}
		})
	}
}
