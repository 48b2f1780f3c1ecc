package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestJWTSameVerdictsAsWebsockify: an operator switching from websockify's
// JWTTokenApi keeps the key file and the tokens. Debian's websockify (with
// python3-jwcrypto) and the bridge, given the same key files, accept and
// refuse the same tokens: HS256 with a base64url secret file, RS256 with a
// PEM public key, a nested JWE (dir, A256GCM) as websockify decrypts it
// with the same key, and expired, not-yet-valid, wrong-key and unsigned
// ones. The times are far from now, since jwcrypto allows 60 s of clock
// skew and the bridge 30 s. The secret file has no trailing newline:
// websockify's jwcrypto refuses "k" values with one ("Failed to correctly
// parse key data!"), while the bridge trims it.
func TestJWTSameVerdictsAsWebsockify(t *testing.T) {
	t.Parallel()
	k := newJWTKeys(t)
	echo := peertest.EchoServer(t)
	host, port, _ := strings.Cut(echo, ":")
	secretFile := k.path("secret-no-newline.jwk")
	peertest.WriteFile(t, secretFile, k.secret, 0o600)
	allow, err := bridge.ParseAllowList("127.0.0.1/32:*")
	require.NoError(t, err)
	hs := func(extra map[string]any) map[string]any {
		return map[string]any{"alg": "HS256", "secret": k.secret, "payload": claims(host, port, extra)}
	}
	rs := func(extra map[string]any) map[string]any {
		return map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": claims(host, port, extra)}
	}
	jwe := hs(map[string]any{"exp": k.now + 600})
	jwe["jwe"] = "dir"
	cases := []struct {
		name, keyFile string
		spec          map[string]any
		accept        bool
	}{
		{"HS256", secretFile, hs(map[string]any{"exp": k.now + 600}), true},
		{"HS256 without exp", secretFile, hs(nil), true},
		{"HS256 expired", secretFile, hs(map[string]any{"exp": k.now - 600}), false},
		{"HS256 not yet valid", secretFile, hs(map[string]any{"nbf": k.now + 600}), false},
		{"HS256 with another secret", secretFile, map[string]any{"alg": "HS256", "secret": k.other, "payload": claims(host, port, nil)}, false},
		{"unsigned", secretFile, map[string]any{"alg": "none", "payload": claims(host, port, nil)}, false},
		{"nested JWE", secretFile, jwe, true},
		{"RS256", k.rsaPub, rs(map[string]any{"exp": k.now + 600}), true},
		{"RS256 expired", k.rsaPub, rs(map[string]any{"exp": k.now - 600}), false},
		{"HS256 against a public key", k.rsaPub, hs(nil), false},
	}
	specs := make([]map[string]any, len(cases))
	for i, tc := range cases {
		specs[i] = tc.spec
	}
	tokens := k.sign(t, specs...)

	servers := map[string]string{} // key file → websockify's address
	bridges := map[string]string{} // key file → the bridge's URL
	for _, f := range []string{secretFile, k.rsaPub} {
		servers[f] = peertest.WebsockifyTokens(t, "JWTTokenApi", f)
		bridges[f], _ = serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: &bridge.JWTTokens{KeyFile: f}, Allow: allow}})
	}
	for i, tc := range cases {
		w := echoes(t, "ws://"+servers[tc.keyFile]+"/?token="+tokens[i])
		b := echoes(t, bridges[tc.keyFile]+"/?token="+tokens[i])
		assert.Equal(t, tc.accept, w, "%s: websockify's verdict", tc.name)
		assert.Equal(t, tc.accept, b, "%s: the bridge's verdict", tc.name)
	}
}

// echoes reports whether a WebSocket to url opens and echoes a message:
// websockify refuses a token by closing the WebSocket after it opened, the
// bridge with 403 before.
func echoes(t *testing.T, url string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return false
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageBinary, []byte("jwt")); err != nil {
		return false
	}
	_, p, err := c.Read(ctx)
	return err == nil && string(p) == "jwt"
}
