package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultRedisTimeout bounds one Redis lookup (connect, authenticate,
// GET) when RedisTokens.Timeout is zero.
const DefaultRedisTimeout = 5 * time.Second

// maxRedisValue caps a token's value: a target address is short.
const maxRedisValue = 64 << 10

// RedisTokens is a TokenStore reading tokens from Redis, compatible with
// websockify's TokenRedis: the value of the key named by the token is
// either JSON {"host": "host:port"} or plain "host:port". Several bridge
// instances behind a load balancer can share one store.
//
// Each Lookup opens a connection, authenticates and selects the database
// when configured, sends GET and closes; lookups happen once per
// WebSocket, so no pool is kept. Errors from Redis or the network are
// returned as they are (the request gets 502); a missing key wraps
// ErrUnknownToken.
type RedisTokens struct {
	// Addr is the server's host:port.
	Addr string
	// DB is the database number; zero skips SELECT.
	DB int
	// Password, when not empty, is sent with AUTH (Username too when set,
	// for Redis 6 ACLs).
	Username, Password string
	// Timeout bounds one lookup; zero means DefaultRedisTimeout.
	Timeout time.Duration
	// Dial opens the connection; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ParseRedisSource parses websockify's --token-source for TokenRedis:
// "host:port[:db[:password]]", the host optionally in brackets (IPv6).
// An empty host means localhost, an empty port 6379.
func ParseRedisSource(src string) (*RedisTokens, error) {
	host, rest := "", src
	if strings.HasPrefix(src, "[") {
		i := strings.IndexByte(src, ']')
		if i < 0 {
			return nil, fmt.Errorf("bridge: redis source %q: missing ]", src)
		}
		host, rest = src[1:i], strings.TrimPrefix(src[i+1:], ":")
	} else {
		host, rest, _ = strings.Cut(src, ":")
	}
	port, rest, _ := strings.Cut(rest, ":")
	dbS, password, _ := strings.Cut(rest, ":")
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "6379"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("bridge: redis source %q: bad port %q", src, port)
	}
	r := &RedisTokens{Addr: net.JoinHostPort(host, port), Password: password}
	if dbS != "" {
		db, err := strconv.Atoi(dbS)
		if err != nil || db < 0 {
			return nil, fmt.Errorf("bridge: redis source %q: bad database %q", src, dbS)
		}
		r.DB = db
	}
	return r, nil
}

// Lookup implements TokenStore.
func (r *RedisTokens) Lookup(ctx context.Context, token string) (addr string, err error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := r.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	c, err := dial(ctx, "tcp", r.Addr)
	if err != nil {
		return "", fmt.Errorf("redis: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	br := bufio.NewReader(c)
	if r.Password != "" {
		args := []string{"AUTH", r.Password}
		if r.Username != "" {
			args = []string{"AUTH", r.Username, r.Password}
		}
		if _, _, err := redisCommand(c, br, args...); err != nil {
			return "", fmt.Errorf("redis AUTH: %w", err)
		}
	}
	if r.DB != 0 {
		if _, _, err := redisCommand(c, br, "SELECT", strconv.Itoa(r.DB)); err != nil {
			return "", fmt.Errorf("redis SELECT: %w", err)
		}
	}
	val, ok, err := redisCommand(c, br, "GET", token)
	if err != nil {
		return "", fmt.Errorf("redis GET: %w", err)
	}
	if !ok {
		return "", ErrUnknownToken
	}
	return parseRedisTarget(val)
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

// redisError is an error reply from the server.
type redisError string

func (e redisError) Error() string { return "server: " + string(e) }

// redisCommand sends one command as a RESP array of bulk strings and
// reads one reply: a simple string, an integer or a bulk string (ok false
// for the null bulk string); an error reply is a redisError.
func redisCommand(w io.Writer, br *bufio.Reader, args ...string) (string, bool, error) {
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	if _, err := w.Write(b); err != nil {
		return "", false, err
	}
	line, err := readRESPLine(br)
	if err != nil {
		return "", false, err
	}
	if line == "" {
		return "", false, errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], true, nil
	case '-':
		return "", false, redisError(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", false, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", false, nil
		}
		if n > maxRedisValue {
			return "", false, fmt.Errorf("value of %d bytes is too large for a target", n)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", false, err
		}
		return string(buf[:n]), true, nil
	default:
		return "", false, fmt.Errorf("unexpected reply %q", line)
	}
}

func readRESPLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", errors.New("reply line too long")
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}
