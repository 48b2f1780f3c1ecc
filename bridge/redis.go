package bridge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisTimeout bounds one Redis lookup (connect, authenticate,
// GET) when RedisTokens.Timeout is zero.
const DefaultRedisTimeout = 5 * time.Second

// DefaultRedisNegativeTTL is how long RedisTokens remembers that a token
// is unknown, when RedisTokens.NegativeTTL is zero.
const DefaultRedisNegativeTTL = time.Second

// DefaultRedisNegativeCacheSize bounds the tokens RedisTokens remembers as
// unknown, when RedisTokens.NegativeCacheSize is zero.
const DefaultRedisNegativeCacheSize = 10000

// maxRedisValue caps a token's value: a target address is short.
const maxRedisValue = 64 << 10

// RedisTokens is a TokenStore reading tokens from Redis, compatible with
// websockify's TokenRedis: the value of the key named by the token
// (prefixed with Namespace and a colon when Namespace is set) is either
// JSON {"host": "host:port"} or plain "host:port". Several bridge
// instances behind a load balancer can share one store.
//
// The server is one Redis (Addr), a master found through Redis Sentinel
// (SentinelMaster and Addrs), or a Redis Cluster (Cluster and Addrs);
// ParseRedisSource reads all three from one string. Connections are
// pooled (github.com/redis/go-redis/v9) and made on the first Lookup;
// Close releases them.
//
// A token found unknown is remembered as unknown for NegativeTTL, so that
// a flood of requests with a bad token asks Redis once per NegativeTTL;
// a token written to Redis right after a failed lookup may thus be
// refused for up to NegativeTTL. Known tokens are never cached: every
// connection asks Redis, so a deleted token stops working at once.
//
// Errors from Redis or the network (including Timeout passing) are
// returned wrapped in "redis: " (the request gets 502); a missing key
// wraps ErrUnknownToken (404); a value that is not a target is an error
// naming the token's key, never a password.
type RedisTokens struct {
	// Addr is the server's host:port; with SentinelMaster or Cluster,
	// used when Addrs is empty.
	Addr string
	// DB is the database number (not with Cluster).
	DB int
	// Password, when not empty, authenticates to Redis (with Username
	// too when set, for Redis 6 ACLs).
	Username, Password string
	// Timeout bounds one lookup; zero means DefaultRedisTimeout.
	Timeout time.Duration
	// Dial opens connections; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// TLS, when not nil, is the TLS configuration for every connection
	// (rediss://); nil means plain TCP.
	TLS *tls.Config
	// Addrs are the Sentinels (with SentinelMaster) or the Cluster's seed
	// nodes (with Cluster), host:port each; ignored otherwise.
	Addrs []string
	// SentinelMaster is the name of the master the Sentinels at Addrs
	// are asked for; empty means no Sentinel.
	SentinelMaster string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// (Username and Password authenticate to the master).
	SentinelUsername, SentinelPassword string
	// Cluster treats Addrs (or Addr) as seed nodes of a Redis Cluster.
	Cluster bool
	// Namespace, when set, prefixes every key: "NAMESPACE:token", as
	// websockify's fifth --token-source field does.
	Namespace string
	// PoolSize is the most connections kept per server; zero means
	// go-redis's default, 10 per CPU.
	PoolSize int
	// NegativeTTL is how long an unknown token is remembered as unknown;
	// zero means DefaultRedisNegativeTTL, a negative value no caching.
	NegativeTTL time.Duration
	// NegativeCacheSize bounds the unknown tokens remembered (the oldest
	// are forgotten first); zero means DefaultRedisNegativeCacheSize.
	NegativeCacheSize int

	once     sync.Once
	mu       sync.Mutex
	client   redis.UniversalClient
	closed   bool
	negative *negativeCache
}

// Lookup implements TokenStore.
func (r *RedisTokens) Lookup(ctx context.Context, token string) (addr string, err error) {
	r.once.Do(r.init)
	if r.negative != nil && r.negative.has(token, time.Now()) {
		return "", ErrUnknownToken
	}
	client, err := r.getClient()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	key := token
	if r.Namespace != "" {
		key = r.Namespace + ":" + token
	}
	val, err := client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		if r.negative != nil {
			r.negative.add(token, time.Now())
		}
		return "", ErrUnknownToken
	}
	if err != nil {
		return "", fmt.Errorf("redis: %w", err)
	}
	if len(val) > maxRedisValue {
		return "", fmt.Errorf("redis value of %d bytes is too large for a target", len(val))
	}
	return parseRedisTarget(val)
}

// String describes the store as a URL without user or passwords, for
// logs: "redis://h:6379/0", "rediss+sentinel://s1:26379,s2:26379/master/0",
// "redis+cluster://n1:6379,n2:6379", with "?namespace=NS" when set.
func (r *RedisTokens) String() string {
	scheme := "redis"
	if r.TLS != nil {
		scheme = "rediss"
	}
	addrs := []string{r.Addr}
	if (r.Cluster || r.SentinelMaster != "") && len(r.Addrs) > 0 {
		addrs = r.Addrs
	}
	path := "/" + strconv.Itoa(r.DB)
	switch {
	case r.SentinelMaster != "":
		scheme += "+sentinel"
		path = "/" + url.PathEscape(r.SentinelMaster) + path
	case r.Cluster:
		scheme += "+cluster"
		path = ""
	}
	s := scheme + "://" + strings.Join(addrs, ",") + path
	if r.Namespace != "" {
		s += "?namespace=" + url.QueryEscape(r.Namespace)
	}
	return s
}

// Close closes the pooled connections. Lookups after Close fail.
func (r *RedisTokens) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.client == nil {
		return nil
	}
	return r.client.Close()
}

func (r *RedisTokens) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultRedisTimeout
}

func (r *RedisTokens) init() {
	ttl, size := r.NegativeTTL, r.NegativeCacheSize
	if ttl == 0 {
		ttl = DefaultRedisNegativeTTL
	}
	if size <= 0 {
		size = DefaultRedisNegativeCacheSize
	}
	if ttl > 0 {
		r.negative = newNegativeCache(ttl, size)
	}
}

func (r *RedisTokens) getClient() (redis.UniversalClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("redis: token store closed")
	}
	if r.client == nil {
		r.client = redis.NewUniversalClient(r.options())
	}
	return r.client, nil
}

// options maps the fields onto go-redis: NewUniversalClient makes a
// failover client when MasterName is set, a cluster client with
// IsClusterMode, and a plain client otherwise.
func (r *RedisTokens) options() *redis.UniversalOptions {
	addrs := []string{r.Addr}
	if (r.Cluster || r.SentinelMaster != "") && len(r.Addrs) > 0 {
		addrs = r.Addrs
	}
	t := r.timeout()
	dial := r.Dial
	if dial != nil && r.TLS != nil {
		dial = tlsOverDial(dial, r.TLS)
	}
	o := &redis.UniversalOptions{
		Addrs:            addrs,
		DB:               r.DB,
		Dialer:           dial,
		Username:         r.Username,
		Password:         r.Password,
		SentinelUsername: r.SentinelUsername,
		SentinelPassword: r.SentinelPassword,
		MasterName:       r.SentinelMaster,
		IsClusterMode:    r.Cluster && r.SentinelMaster == "",
		TLSConfig:        r.TLS,
		PoolSize:         r.PoolSize,
		DialTimeout:      t,
		// One dial per attempt: go-redis's command retries (MaxRetries,
		// default 3) already try again, and a refused dial should fail
		// the lookup with its own error, not with the deadline.
		DialerRetries: 1,
		ReadTimeout:   t,
		WriteTimeout:  t,
		// The lookup's context (Timeout) bounds every step, retries
		// included.
		ContextTimeoutEnabled: true,
		// A token store needs none of the newer handshake extras; some
		// managed servers refuse them.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if r.Cluster {
		o.DB = 0
	}
	return o
}

// tlsOverDial adds TLS to a custom dialer: go-redis applies its TLS
// configuration only to the connections it dials itself.
func tlsOverDial(dial func(context.Context, string, string) (net.Conn, error), cfg *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
}

// parseRedisTarget reads a TokenRedis value: JSON {"host": "h:p"} or
// plain "h:p".
func parseRedisTarget(val string) (string, error) {
	val = strings.TrimSpace(val)
	if strings.HasPrefix(val, "{") {
		var v struct {
			Host string `json:"host"`
		}
		if err := json.Unmarshal([]byte(val), &v); err != nil {
			return "", fmt.Errorf("redis value: %w", err)
		}
		val = strings.TrimSpace(v.Host)
	}
	if _, _, err := net.SplitHostPort(val); err != nil {
		return "", fmt.Errorf("redis value %q: want host:port or {\"host\": \"host:port\"}", val)
	}
	return val, nil
}
