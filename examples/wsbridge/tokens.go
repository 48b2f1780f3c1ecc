package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/wsproxy/wsproxy/bridge"
)

// jwtStore is --token-plugin JWTTokenApi: the key file is read at start,
// so that a missing or unusable key stops wsbridge instead of refusing
// every connection.
func jwtStore(o *options, log *slog.Logger) (*bridge.JWTTokens, error) {
	store := &bridge.JWTTokens{KeyFile: o.tokenSource, Logger: log}
	if err := store.Load(); err != nil {
		return nil, fmt.Errorf("--token-source: %w", err)
	}
	return store, nil
}

// closeTokenStore releases a token store's connections (Redis's pool).
func closeTokenStore(r bridge.TargetResolver) {
	if tr, ok := r.(*bridge.TokenResolver); ok {
		if c, ok := tr.Store.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// routeRedisLogs sends go-redis's own messages (pool and Sentinel events),
// which it writes to standard error by default, to wsbridge's log.
func routeRedisLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "wsbridge: redis: "+strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}

// redisSourceForLog describes a TokenRedis source without its passwords.
func redisSourceForLog(src string) string {
	r, err := bridge.ParseRedisSource(src)
	if err != nil {
		return "(unparsable)"
	}
	return r.String()
}
