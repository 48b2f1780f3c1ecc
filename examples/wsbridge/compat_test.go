package main

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

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
