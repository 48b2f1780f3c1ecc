package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// upgrade sends a raw RFC 6455 upgrade offering protocols and returns the
// status and the chosen subprotocol.
func upgrade(t *testing.T, addr, protocols string) (int, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if protocols != "" {
		req.Header.Set("Sec-WebSocket-Protocol", protocols)
	}
	require.NoError(t, req.Write(nc))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Sec-WebSocket-Protocol")
}

// TestSubprotocolsVsWebsockify runs the same offers against Debian's
// websockify and wsbridge; the differences are the documented ones
// (docs/websockify-compat.md): wsbridge parses "foo, binary" and speaks
// base64.
func TestSubprotocolsVsWebsockify(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	ws := peertest.Websockify(t, echo, "")
	wb, _ := startBridge(t, echo)
	type answer struct {
		status int
		proto  string
	}
	for _, tc := range []struct {
		offer                string
		websockify, wsbridge answer
	}{
		{"", answer{101, ""}, answer{101, ""}},
		{"binary", answer{101, "binary"}, answer{101, "binary"}},
		{"foo,binary", answer{101, "binary"}, answer{101, "binary"}},
		{"foo, binary", answer{400, ""}, answer{101, "binary"}}, // websockify splits at "," and keeps the space
		{"base64", answer{400, ""}, answer{101, "base64"}},
		{"base64, binary", answer{400, ""}, answer{101, "binary"}}, // the same space
		{"foo", answer{400, ""}, answer{400, ""}},
	} {
		s, p := upgrade(t, ws, tc.offer)
		assert.Equal(t, tc.websockify, answer{s, p}, "websockify, offer %q", tc.offer)
		s, p = upgrade(t, wb, tc.offer)
		assert.Equal(t, tc.wsbridge, answer{s, p}, "wsbridge, offer %q", tc.offer)
	}
}

// TestRefusalsVsWebsockify: an unknown token and an unreachable target,
// against websockify and wsbridge.
func TestRefusalsVsWebsockify(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	l.Close()
	tokens := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("down: "+closed+"\n"), 0o644))

	bin := peertest.Require(t, "websockify", "apt-get install -y websockify")
	ws := net.JoinHostPort("127.0.0.1", strconv.Itoa(peertest.FreePort(t)))
	p := peertest.Start(t, "websockify", []string{bin, "--token-plugin", "TokenFile", "--token-source", tokens, ws})
	p.WaitTCP(t, ws, 15*time.Second)
	wb, _ := startBridge(t, "--token-plugin", "TokenFile", "--token-source", tokens)

	// Unknown token: websockify drops the connection without an answer;
	// wsbridge answers 404 before the handshake.
	_, err = rawStatus(ws + "/?token=nope")
	assert.Error(t, err, "websockify answered an unknown token")
	status, err := rawStatus(wb + "/?token=nope")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Unreachable target: both open the WebSocket and close it with 1011.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, addr := range map[string]string{"websockify": ws, "wsbridge": wb} {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/?token=down", &websocket.DialOptions{Subprotocols: []string{"binary"}})
		require.NoError(t, err, name)
		_, _, err = c.Read(ctx)
		assert.Equal(t, websocket.StatusInternalError, websocket.CloseStatus(err), name)
		c.CloseNow()
	}
}

// rawStatus sends an upgrade for hostPath and returns the answer's status,
// or the error when there is no answer.
func rawStatus(hostPath string) (int, error) {
	host, path, _ := strings.Cut(hostPath, "/")
	nc, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	req, _ := http.NewRequest("GET", "http://"+host+"/"+path, nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if err := req.Write(nc); err != nil {
		return 0, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
