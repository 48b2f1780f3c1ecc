package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// A proxy refusing with Connection: close and no body length, and leaving
// the socket open: wsdial -v shows the status line and exits 1 with the
// status at once, not after its timeout.
func TestRefusalLeftOpen(t *testing.T) {
	t.Parallel()
	p := proxytest.New(t, proxytest.Config{Handle: func(c net.Conn, _ *http.Request) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nno")
		_, _ = io.Copy(io.Discard, c) // until the client closes
	}})
	start := time.Now()
	code, _, errOut := runWsdial(t, strings.NewReader(""), "-proxy", p.URL.String(), "-timeout", "20s", "-v", "ws://127.0.0.1:9/")
	t.Logf("took %v", time.Since(start)) // logged, not asserted
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "wsdial: <- HTTP/1.1 400 Bad Request")
	require.Contains(t, errOut, "400 Bad Request")
	require.NotContains(t, errOut, "deadline exceeded")
}
