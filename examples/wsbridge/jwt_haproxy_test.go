package main

import (
	"encoding/base64"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestJWTTokensBehindHAProxy: two wsbridge processes with the same
// JWTTokenApi key file (a websockify-style base64url HS256 secret) behind
// a real HAProxy (send-proxy-v2, checks on /readyz). A valid token
// reaches its target through either bridge (round robin: one connection
// each), logged with the client's own address; an expired token and one
// signed with another key get 403 through HAProxy, with a log line that
// names the reason and never the token.
func TestJWTTokensBehindHAProxy(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	secret := []byte("a-32-byte-secret-for-hs256-token")
	keyFile := filepath.Join(t.TempDir(), "jwt.key")
	peertest.WriteFile(t, keyFile, base64.RawURLEncoding.EncodeToString(secret)+"\n", 0o600)
	args := append([]string{"--token-plugin", "JWTTokenApi", "--token-source", keyFile,
		"--allow-target", "127.0.0.1/32:*", "--log-format", "json"}, bridgeProxyProtocolArgs...)
	a := startBridgeProc(t, "wsbridge-a", args...)
	b := startBridgeProc(t, "wsbridge-b", args...)
	lb := peertest.StartHAProxy(t, peertest.HAProxyOptions{Servers: []peertest.HAProxyServer{
		{Name: "a", Addr: a.addr, CheckPort: portOf(t, a.metrics), Options: proxyProtocolToBridges},
		{Name: "b", Addr: b.addr, CheckPort: portOf(t, b.metrics), Options: proxyProtocolToBridges},
	}})
	require.Eventually(t, func() bool { return lb.ServerStatus(t, "a") == "UP" && lb.ServerStatus(t, "b") == "UP" },
		10*time.Second, 20*time.Millisecond, "HAProxy sees both bridges")

	host, port, err := net.SplitHostPort(echo)
	require.NoError(t, err)
	sign := func(key []byte, exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"host": host, "port": port, "exp": exp.Unix()}).SignedString(key)
		require.NoError(t, err)
		return s
	}
	valid := sign(secret, time.Now().Add(time.Minute))
	var locals []string
	for i := range 2 {
		var local atomic.Value
		opts, tr := dialFrom(clientIP(i), &local)
		echoVia(t, "ws://"+lb.Addr+"/websockify?token="+valid, opts)
		tr.CloseIdleConnections()
		locals = append(locals, local.Load().(string))
	}
	for _, p := range []*bridgeProc{a, b} {
		assert.Equal(t, 1.0, p.metric(t, "wsbridge_connections_total", `result="ok"`), "%s served one valid token (round robin)", p.Name)
	}
	require.Eventually(t, func() bool {
		logged := loggedRemotes(a.Output(), b.Output())
		return logged[locals[0]] && logged[locals[1]]
	}, 5*time.Second, 20*time.Millisecond, "the bridges log the clients' own addresses %v", locals)

	refused := map[string]string{
		"expired":   sign(secret, time.Now().Add(-time.Hour)),
		"wrong key": sign([]byte("another-32-byte-secret-for-hs256"), time.Now().Add(time.Minute)),
	}
	for reason, token := range refused {
		status, err := rawStatus(lb.Addr + "/?token=" + token)
		require.NoError(t, err, reason)
		assert.Equal(t, http.StatusForbidden, status, reason)
	}
	require.Eventually(t, func() bool {
		return a.metric(t, "wsbridge_connections_total", `result="refused"`)+b.metric(t, "wsbridge_connections_total", `result="refused"`) == 2
	}, 5*time.Second, 20*time.Millisecond, "two refusals counted")
	logs := a.Output() + "\n" + b.Output()
	assert.Contains(t, logs, "JWT refused: expired")
	assert.Contains(t, logs, "JWT refused: bad signature")
	for reason, token := range refused {
		assert.NotContains(t, logs, token, reason)
		assert.NotContains(t, logs, strings.Split(token, ".")[2], "%s: the signature is logged", reason)
	}
	assert.NotContains(t, logs, strings.Split(valid, ".")[2], "the valid token's signature is logged")
}
