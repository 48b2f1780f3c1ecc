package bridge_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// redisStat reads one number from a real server's INFO section, e.g.
// ("stats", `total_connections_received:(\d+)`).
func redisStat(t *testing.T, addr, password, section, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(peertest.RedisText(t, addr, password, "INFO", section))
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

func redisGets(t *testing.T, addr, password string) int {
	return redisStat(t, addr, password, "commandstats", `cmdstat_get:calls=(\d+)`)
}

func parseSource(t *testing.T, src string) *bridge.RedisTokens {
	t.Helper()
	r, err := bridge.ParseRedisSource(src)
	require.NoError(t, err, src)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestRedisTokensPool: many lookups, one after the other and at once,
// share a few pooled connections (counted by the real server), and the
// user, password and database of a redis:// URL are used.
func TestRedisTokensPool(t *testing.T) {
	t.Parallel()
	addr := peertest.Redis(t, "s3cret")
	peertest.RedisText(t, addr, "s3cret", "ACL", "SETUSER", "bridge", "on", ">p@ss:word", "~*", "+@all")
	db2 := redis.NewClient(&redis.Options{Addr: addr, Password: "s3cret", DB: 2})
	require.NoError(t, db2.Set(context.Background(), "tok", "10.0.0.1:5900", 0).Err())
	require.NoError(t, db2.Close())
	before := redisStat(t, addr, "s3cret", "stats", `total_connections_received:(\d+)`)

	store := parseSource(t, "redis://bridge:"+url.PathEscape("p@ss:word")+"@"+addr+"/2")
	store.PoolSize = 4
	ctx := context.Background()
	for range 50 {
		got, err := store.Lookup(ctx, "tok")
		require.NoError(t, err)
		require.Equal(t, "10.0.0.1:5900", got)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				_, err := store.Lookup(ctx, "tok")
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	// Our own INFO connections count too: one per redisStat call.
	opened := redisStat(t, addr, "s3cret", "stats", `total_connections_received:(\d+)`) - before - 1
	assert.GreaterOrEqual(t, opened, 1)
	assert.LessOrEqual(t, opened, 4, "250 lookups opened %d connections with a pool of 4", opened)
}

// TestRedisTokensNegativeCache: a flood of lookups of an unknown token
// asks Redis once per NegativeTTL; a known token is asked every time, so
// deleting it revokes it at once.
func TestRedisTokensNegativeCache(t *testing.T) {
	t.Parallel()
	addr := peertest.Redis(t, "")
	store := parseSource(t, addr)
	store.NegativeTTL = 300 * time.Millisecond
	ctx := context.Background()
	base := redisGets(t, addr, "")
	for range 100 {
		_, err := store.Lookup(ctx, "unknown")
		require.ErrorIs(t, err, bridge.ErrUnknownToken)
	}
	assert.Equal(t, 1, redisGets(t, addr, "")-base, "100 lookups of one unknown token")

	// Written after the failed lookup: found once the entry expires.
	peertest.RedisText(t, addr, "", "SET", "unknown", `{"host": "127.0.0.1:22"}`)
	require.Eventually(t, func() bool {
		got, err := store.Lookup(ctx, "unknown")
		return err == nil && got == "127.0.0.1:22"
	}, 5*time.Second, 20*time.Millisecond)

	base = redisGets(t, addr, "")
	for range 10 {
		_, err := store.Lookup(ctx, "unknown")
		require.NoError(t, err)
	}
	assert.Equal(t, 10, redisGets(t, addr, "")-base, "known tokens are not cached")
	peertest.RedisText(t, addr, "", "DEL", "unknown")
	_, err := store.Lookup(ctx, "unknown")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken, "a deleted token is refused at once")

	// Without the cache every lookup asks.
	off := parseSource(t, addr)
	off.NegativeTTL = -1
	base = redisGets(t, addr, "")
	for range 5 {
		_, _ = off.Lookup(ctx, "nope")
	}
	assert.Equal(t, 5, redisGets(t, addr, "")-base)
}

// TestRedisTokensTimeout: a server that accepts and never answers fails
// the lookup after Timeout, with an error, not a hang.
func TestRedisTokensTimeout(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	store := parseSource(t, "redis://"+l.Addr().String()+"?timeout=300ms")
	_, err = store.Lookup(context.Background(), "tok")
	require.Error(t, err)
	assert.NotErrorIs(t, err, bridge.ErrUnknownToken)
	assert.Regexp(t, `redis: .*(timeout|deadline)`, err.Error())
}

// TestRedisTokensTLS: rediss:// with the server's CA in ca_file; without
// it, the certificate is refused.
func TestRedisTokensTLS(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	plain, tlsAddr := peertest.RedisTLS(t, cert, "s3cret")
	peertest.RedisText(t, plain, "s3cret", "SET", "ns:tok", "127.0.0.1:5901")

	store := parseSource(t, "rediss://:s3cret@"+tlsAddr+"/0?namespace=ns&ca_file="+url.QueryEscape(cert.CertFile))
	got, err := store.Lookup(context.Background(), "tok")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5901", got)

	untrusted := parseSource(t, "rediss://:s3cret@"+tlsAddr+"?timeout=2")
	_, err = untrusted.Lookup(context.Background(), "tok")
	assert.ErrorContains(t, err, "certificate")

	// The same server over plain TCP through the TLS port fails too.
	plainOnTLS := parseSource(t, "redis://:s3cret@"+tlsAddr+"?timeout=1")
	_, err = plainOnTLS.Lookup(context.Background(), "tok")
	assert.Error(t, err)
}

// TestRedisTokensSentinel: the master is found through real Sentinels; a
// dead Sentinel listed first is skipped.
func TestRedisTokensSentinel(t *testing.T) {
	t.Parallel()
	master := peertest.Redis(t, "s3cret")
	peertest.RedisText(t, master, "s3cret", "SET", "tok", "127.0.0.1:5902")
	s1 := peertest.RedisSentinel(t, "wsmaster", master, "s3cret")
	s2 := peertest.RedisSentinel(t, "wsmaster", master, "s3cret")
	dead := fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t))

	store := parseSource(t, "redis+sentinel://:s3cret@"+dead+","+s1+","+s2+"/wsmaster/0?timeout=3")
	got, err := store.Lookup(context.Background(), "tok")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5902", got)
	_, err = store.Lookup(context.Background(), "other")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken)

	wrongName := parseSource(t, "redis+sentinel://:s3cret@"+s1+"/nosuchmaster?timeout=2")
	_, err = wrongName.Lookup(context.Background(), "tok")
	assert.Error(t, err)
}

// TestRedisTokensCluster: a real (one-node) Redis Cluster.
func TestRedisTokensCluster(t *testing.T) {
	t.Parallel()
	node := peertest.RedisCluster(t)
	peertest.RedisText(t, node, "", "SET", "tok", `{"host": "127.0.0.1:5903"}`)
	store := parseSource(t, "redis+cluster://"+node)
	got, err := store.Lookup(context.Background(), "tok")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5903", got)
	_, err = store.Lookup(context.Background(), "other")
	assert.ErrorIs(t, err, bridge.ErrUnknownToken)
}

type redisSourceCase struct {
	src            string
	addr           string
	addrs          []string
	user, pass, ns string
	db             int
	master         string
	cluster, tls   bool
	timeout        time.Duration
	sentinelPass   string
}

func (c redisSourceCase) String() string { return c.src }

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	for _, c := range []redisSourceCase{
		{src: "redis://h", addr: "h:6379"},
		{src: "redis://:pw@h:6380/3", addr: "h:6380", pass: "pw", db: 3},
		{src: "redis://u:p%40ss@[::1]:7000/1?namespace=app&timeout=2.5", addr: "[::1]:7000", user: "u", pass: "p@ss", db: 1, ns: "app", timeout: 2500 * time.Millisecond},
		{src: "rediss://h/0?timeout=3s", addr: "h:6379", tls: true, timeout: 3 * time.Second},
		{src: "redis+sentinel://:pw@s1,s2:26380,[::1]/mymaster/4?sentinel_password=sp", addr: "s1:26379",
			addrs: []string{"s1:26379", "s2:26380", "[::1]:26379"}, pass: "pw", master: "mymaster", db: 4, sentinelPass: "sp"},
		{src: "rediss+sentinel://s1/m", addr: "s1:26379", addrs: []string{"s1:26379"}, master: "m", tls: true},
		{src: "redis+cluster://n1:7000,n2:7001", addr: "n1:7000", addrs: []string{"n1:7000", "n2:7001"}, cluster: true},
		{src: "rediss+cluster://u:p@n1", addr: "n1:6379", addrs: []string{"n1:6379"}, cluster: true, tls: true, user: "u", pass: "p"},
		{src: "h:1:2:pw:ns", addr: "h:1", pass: "pw", db: 2, ns: "ns"},
		{src: `h::::"a:b"`, addr: "h:6379", ns: "a:b"},
	} {
		r, err := bridge.ParseRedisSource(c.src)
		require.NoError(t, err, c)
		assert.Equal(t, c.addr, r.Addr, c)
		assert.Equal(t, c.addrs, r.Addrs, c)
		assert.Equal(t, c.user, r.Username, c)
		assert.Equal(t, c.pass, r.Password, c)
		assert.Equal(t, c.db, r.DB, c)
		assert.Equal(t, c.ns, r.Namespace, c)
		assert.Equal(t, c.master, r.SentinelMaster, c)
		assert.Equal(t, c.cluster, r.Cluster, c)
		assert.Equal(t, c.tls, r.TLS != nil, c)
		assert.Equal(t, c.timeout, r.Timeout, c)
		assert.Equal(t, c.sentinelPass, r.SentinelPassword, c)
	}
	for _, bad := range []string{
		"http://h", "redis://h:0", "redis://h:x", "redis://h1,h2", "redis://h/x", "redis://h/-1",
		"redis+sentinel://s1", "redis+cluster://n1/0", "redis://h?bogus=1", "redis://h?timeout=0",
		"redis://h?ca_file=/x", "rediss://h?ca_file=/nonexistent", "rediss://h?cert_file=/x",
		"redis://:secretpw@h:99999", "h:1:2:secretpw:ns:extra", "[::1", "[::1]x",
	} {
		_, err := bridge.ParseRedisSource(bad)
		if assert.Error(t, err, bad) {
			assert.NotContains(t, err.Error(), "secretpw", bad)
		}
	}
}

// TestRedisTokensString: the description for logs has no credentials.
func TestRedisTokensString(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"h:1:2:secretpw:ns":                          "redis://h:1/2?namespace=ns",
		"rediss://u:secretpw@h/3":                    "rediss://h:6379/3",
		"redis+sentinel://:secretpw@s1,s2:2/m/1":     "redis+sentinel://s1:26379,s2:2/m/1",
		"rediss+cluster://u:secretpw@n1?namespace=a": "rediss+cluster://n1:6379?namespace=a",
	} {
		r, err := bridge.ParseRedisSource(src)
		require.NoError(t, err, src)
		assert.Equal(t, want, r.String(), src)
	}
}
