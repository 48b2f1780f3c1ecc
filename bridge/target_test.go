package bridge_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

func TestAllowList(t *testing.T) {
	t.Parallel()
	a, err := bridge.ParseAllowList("127.0.0.0/8:5900-5910", "10.0.0.7:22,80", "[::1]/128:*", "192.168.0.0/16:443")
	require.NoError(t, err)
	for _, tc := range []struct {
		addr string
		port uint16
		want bool
	}{
		{"127.0.0.1", 5900, true},
		{"127.9.9.9", 5910, true},
		{"127.0.0.1", 5911, false},
		{"10.0.0.7", 22, true},
		{"10.0.0.7", 80, true},
		{"10.0.0.8", 22, false},
		{"::1", 1, true},
		{"::ffff:127.0.0.1", 5901, true}, // mapped IPv4 is IPv4
		{"192.168.1.1", 443, true},
		{"8.8.8.8", 443, false},
	} {
		assert.Equal(t, tc.want, a.Allowed(netip.MustParseAddr(tc.addr), tc.port), "%s:%d", tc.addr, tc.port)
	}
	for _, bad := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:9-8", "nonsense:80", "1.2.3.4/40:80"} {
		_, err := bridge.ParseAllowList(bad)
		assert.Error(t, err, bad)
	}
	// A host name must resolve to allowed addresses only; the checked
	// address is what gets dialed.
	tgt, err := a.Check(context.Background(), "localhost:5900")
	if err == nil {
		assert.Equal(t, "localhost", tgt.ServerName)
		assert.True(t, strings.HasPrefix(tgt.Address, "127.") || strings.HasPrefix(tgt.Address, "[::1]"), tgt.Address)
	} else {
		assert.ErrorIs(t, err, bridge.ErrTargetNotAllowed) // localhost also resolved to ::1, which is allowed, so this is only for odd hosts
	}
	_, err = a.Check(context.Background(), "8.8.8.8:443")
	assert.ErrorIs(t, err, bridge.ErrTargetNotAllowed)
}

func writeTokens(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func TestTokenFileReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "# comment\n\nalpha: 127.0.0.1:5901\nbroken line\nbeta:\t[::1]:5902\n")
	f := &bridge.TokenFile{Path: path, Logger: slog0(t)}
	ctx := context.Background()
	got, err := f.Lookup(ctx, "alpha")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5901", got)
	got, err = f.Lookup(ctx, "beta")
	require.NoError(t, err)
	assert.Equal(t, "[::1]:5902", got)
	_, err = f.Lookup(ctx, "gamma")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken)

	writeTokens(t, path, "gamma: 127.0.0.1:5903\n")
	got, err = f.Lookup(ctx, "gamma")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5903", got)
	_, err = f.Lookup(ctx, "alpha")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken)

	ro := &bridge.TokenFile{Path: path, ReadOnly: true}
	_, err = ro.Lookup(ctx, "gamma")
	require.NoError(t, err)
	writeTokens(t, path, "delta: 127.0.0.1:5904\n")
	_, err = ro.Lookup(ctx, "delta")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken, "read-only token file must not reload")
}

func TestTokenDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTokens(t, filepath.Join(dir, "a.conf"), "one: 127.0.0.1:1\n")
	writeTokens(t, filepath.Join(dir, "b.conf"), "two: 127.0.0.1:2\n")
	f := &bridge.TokenFile{Path: dir}
	ctx := context.Background()
	got, err := f.Lookup(ctx, "two")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:2", got)
	writeTokens(t, filepath.Join(dir, "c.conf"), "three: 127.0.0.1:3\n")
	got, err = f.Lookup(ctx, "three")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:3", got)
	require.NoError(t, os.Remove(filepath.Join(dir, "a.conf")))
	_, err = f.Lookup(ctx, "one")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken)
}

// TestTokenRelay runs tokens end to end: ?token= and Host tokens, unknown
// tokens, targets outside the allow-list, and no allow-list at all.
func TestTokenRelay(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "vnc: "+echo+"\nevil: 10.255.255.1:22\nlocalhost: "+echo+"\n")
	allow, err := bridge.ParseAllowList("127.0.0.0/8:*")
	require.NoError(t, err)

	url, _ := serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: &bridge.TokenFile{Path: path}, Allow: allow}})
	c := dial(t, url+"/?token=vnc", nil)
	require.NoError(t, c.Write(context.Background(), websocket.MessageBinary, []byte("hi")))
	assert.Equal(t, "hi", string(readN(t, c, 2, false)))

	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/?token=nope", http.StatusNotFound},
		{"/", http.StatusNotFound},
		{"/?token=evil", http.StatusForbidden},
	} {
		status, _ := dialStatus(t, url+tc.path, nil)
		assert.Equal(t, tc.status, status, tc.path)
	}

	// No allow-list: every token target is refused.
	open, _ := serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: &bridge.TokenFile{Path: path}}})
	status, _ := dialStatus(t, open+"/?token=vnc", nil)
	assert.Equal(t, http.StatusForbidden, status)

	// Host tokens: the Host header without its port.
	hostURL, _ := serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: &bridge.TokenFile{Path: path}, HostToken: true, Allow: allow}})
	hostURL = strings.Replace(hostURL, "127.0.0.1", "localhost", 1)
	c = dial(t, hostURL, nil)
	require.NoError(t, c.Write(context.Background(), websocket.MessageBinary, []byte("host")))
	assert.Equal(t, "host", string(readN(t, c, 4, false)))
}

// TestRedisTokens uses a real redis-server: JSON and plain values, a
// missing key, a password and a database number, and the relay through
// a token stored there.
func TestRedisTokens(t *testing.T) {
	t.Parallel()
	addr := peertest.Redis(t, "s3cret")
	echo := peertest.EchoServer(t)
	peertest.RedisText(t, addr, "s3cret", "SET", "json", `{"host": "`+echo+`"}`)
	peertest.RedisText(t, addr, "s3cret", "SET", "plain", echo)
	peertest.RedisText(t, addr, "s3cret", "SET", "garbage", `{"port": 1}`)
	peertest.RedisText(t, addr, "s3cret", "SELECT", "3") // a separate connection: no effect on the next
	host, port, _ := net.SplitHostPort(addr)

	store, err := bridge.ParseRedisSource(host + ":" + port + ":0:s3cret")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	got, err := store.Lookup(ctx, "json")
	require.NoError(t, err)
	assert.Equal(t, echo, got)
	got, err = store.Lookup(ctx, "plain")
	require.NoError(t, err)
	assert.Equal(t, echo, got)
	_, err = store.Lookup(ctx, "missing")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken)
	_, err = store.Lookup(ctx, "garbage")
	assert.Error(t, err)

	wrong, _ := bridge.ParseRedisSource(host + ":" + port + ":0:wrong")
	t.Cleanup(func() { _ = wrong.Close() })
	_, err = wrong.Lookup(ctx, "json")
	assert.ErrorContains(t, err, "WRONGPASS")
	assert.NotContains(t, err.Error(), "wrong", "the password stays out of errors")

	other, _ := bridge.ParseRedisSource(host + ":" + port + ":5:s3cret")
	t.Cleanup(func() { _ = other.Close() })
	_, err = other.Lookup(ctx, "json")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken, "database 5 is empty")

	allow, _ := bridge.ParseAllowList("127.0.0.1/32:*")
	url, _ := serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: store, Allow: allow}})
	c := dial(t, url+"/?token=json", nil)
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("redis")))
	assert.Equal(t, "redis", string(readN(t, c, 5, false)))
}

// TestTokenStoreDown: a store that cannot be asked refuses with 502.
func TestTokenStoreDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	store := &bridge.RedisTokens{Addr: addr, Timeout: time.Second}
	t.Cleanup(func() { _ = store.Close() })
	url, logs := serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: store, Allow: bridge.AllowAll()}})
	status, _ := dialStatus(t, url+"/?token=x", nil)
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Contains(t, logs.String(), "redis: dial tcp")
}

func TestParseRedisSource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src, addr, pass string
		db              int
	}{
		{"127.0.0.1:6379", "127.0.0.1:6379", "", 0},
		{"redis.local:6380:2", "redis.local:6380", "", 2},
		{"h:1:0:pa:ss", "h:1", "pa", 0}, // websockify: the fifth field is the namespace
		{`h:1:0:"pa:ss"`, "h:1", "pa:ss", 0},
		{"[::1]:6379:1", "[::1]:6379", "", 1},
		{":", "localhost:6379", "", 0},
	} {
		r, err := bridge.ParseRedisSource(tc.src)
		require.NoError(t, err, tc.src)
		assert.Equal(t, tc.addr, r.Addr, tc.src)
		assert.Equal(t, tc.pass, r.Password, tc.src)
		assert.Equal(t, tc.db, r.DB, tc.src)
	}
	for _, bad := range []string{"h:port", "h:1:x", "[::1"} {
		_, err := bridge.ParseRedisSource(bad)
		assert.Error(t, err, bad)
	}
}

func TestUnixTarget(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := c.Read(buf); err == nil {
			c.Write(append([]byte("unix:"), buf...))
		}
	}()
	url, _ := serve(t, &bridge.Handler{Resolver: bridge.FixedTarget{Network: "unix", Address: sock}})
	c := dial(t, url, nil)
	require.NoError(t, c.Write(context.Background(), websocket.MessageBinary, []byte("hello")))
	assert.Equal(t, "unix:hello", string(readN(t, c, 10, false)))
}

func TestTLSTarget(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	// Verified against the test server's CA: a plain HTTP request relayed
	// over the bridge gets an answer.
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.ServerName = "example.com" // the test certificate's name
	url, _ := serve(t, &bridge.Handler{Resolver: bridge.FixedTarget{Address: addr}, TargetTLS: cfg})
	c := dial(t, url, nil)
	require.NoError(t, c.Write(context.Background(), websocket.MessageBinary, []byte("GET / HTTP/1.0\r\n\r\n")))
	assert.Equal(t, "HTTP/1.0 200", string(readN(t, c, 12, false)[:12]))

	// Unverifiable: 1011 and a logged reason.
	bad, logs := serve(t, &bridge.Handler{Resolver: bridge.FixedTarget{Address: addr}, TargetTLS: tlsConfigNoRoots()})
	c = dial(t, bad, nil)
	_, _, err := c.Read(context.Background())
	assert.Equal(t, websocket.StatusInternalError, websocket.CloseStatus(err))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "tls to target") }, 5*time.Second, 10*time.Millisecond)
}
