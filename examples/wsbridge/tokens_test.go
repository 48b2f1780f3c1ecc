package main

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// echoThrough dials url and checks that a message comes back.
func echoThrough(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("tok")))
	_, got, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "tok", string(got))
}

// TestJWTTokenApiCLI: --token-plugin JWTTokenApi with a websockify-style
// key file (a base64url secret); a valid token reaches its target, an
// expired one gets 403 and a log line naming the reason.
func TestJWTTokenApiCLI(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	secret := []byte("a-32-byte-secret-for-hs256-token")
	keyFile := filepath.Join(t.TempDir(), "jwt.key")
	peertest.WriteFile(t, keyFile, base64.RawURLEncoding.EncodeToString(secret)+"\n", 0o600)
	addr, logs := startBridge(t, "--token-plugin", "JWTTokenApi", "--token-source", keyFile, "--allow-target", "127.0.0.1/32:*")
	host, port, err := net.SplitHostPort(echo)
	require.NoError(t, err)
	sign := func(exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"host": host, "port": port, "exp": exp.Unix()}).SignedString(secret)
		require.NoError(t, err)
		return s
	}
	echoThrough(t, "ws://"+addr+"/websockify?token="+sign(time.Now().Add(time.Minute)))
	status, err := rawStatus(addr + "/?token=" + sign(time.Now().Add(-time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, logs.String(), "JWT refused: expired")
}

// TestTokenRedisURLCLI: --token-source as a redis:// URL with a password
// and a namespace; the startup log line does not show the password.
func TestTokenRedisURLCLI(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	raddr := peertest.Redis(t, "s3cretpw")
	peertest.RedisText(t, raddr, "s3cretpw", "SET", "app:tok", echo)
	addr, logs := startBridge(t, "--token-plugin", "TokenRedis", "--token-source", "redis://:s3cretpw@"+raddr+"/0?namespace=app",
		"--allow-target", "127.0.0.1/32:*")
	echoThrough(t, "ws://"+addr+"/?token=tok")
	assert.Contains(t, logs.String(), "TokenRedis:redis://"+raddr+"/0?namespace=app")
	assert.NotContains(t, logs.String(), "s3cretpw")
}

// TestTokenPluginConfigErrors: unusable token sources stop wsbridge at
// start.
func TestTokenPluginConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pemNoKey := filepath.Join(dir, "bad.pem")
	peertest.WriteFile(t, pemNoKey, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-plugin", "JWTTokenApi", "--token-source", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"--token-plugin", "JWTTokenApi", "--token-source", pemNoKey}, "JWT key"},
		{[]string{"--token-plugin", "TokenRedis", "--token-source", "redis+sentinel://s1", "--allow-target", "0.0.0.0/0:*"}, "master's name"},
	} {
		err := run(context.Background(), append([]string{"127.0.0.1:0"}, tc.args...), &syncBuf{}, nil)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
}
