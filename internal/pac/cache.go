package pac

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// cacheKey names one cached fetch: the URL (or, for WPAD, the candidate
// list) and the Fetcher settings that can change its result.
type cacheKey struct {
	url       string
	userAgent string
	maxHeader int
	scope     any
}

func (f Fetcher) key(url string) cacheKey {
	return cacheKey{url: url, userAgent: f.UserAgent, maxHeader: f.MaxHeaderBytes, scope: f.Scope}
}

// scripts holds compiled scripts by key.
var scripts = newOnceCache[cacheKey, *Script](CacheTTL, FailTTL)

// Script returns the compiled script at raw, fetching it when it is not
// cached or has expired. A script is cached for CacheTTL, a failed fetch
// or compilation for FailTTL.
func (f Fetcher) Script(ctx context.Context, raw string) (*Script, error) {
	return scripts.get(ctx, f.key(raw), func(ctx context.Context) (*Script, error) {
		src, err := f.Fetch(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		return Compile(proxyurl.RedactString(raw), src)
	})
}

// Invalidate forgets every cached script and WPAD result, including those
// whose fetch is under way: such a fetch still answers its own caller,
// but its result is not kept.
func Invalidate() {
	scripts.invalidate()
	wpadResults.invalidate()
}

// onceCache caches one value per key, good answers for okTTL and failures
// for failTTL, with one fill at a time per key; other callers wait for it
// or for their context. A fill cut short by its caller's context is not
// cached, nor is one that invalidate overtook.
type onceCache[K comparable, T any] struct {
	okTTL, failTTL time.Duration
	now            func() time.Time

	mu sync.Mutex
	m  map[K]*onceEntry[T]
}

type onceEntry[T any] struct {
	val  T
	err  error
	at   time.Time
	done chan struct{} // closed when the fill ends
}

func newOnceCache[K comparable, T any](okTTL, failTTL time.Duration) *onceCache[K, T] {
	return &onceCache[K, T]{okTTL: okTTL, failTTL: failTTL, now: time.Now, m: map[K]*onceEntry[T]{}}
}

func (c *onceCache[K, T]) get(ctx context.Context, key K, fill func(context.Context) (T, error)) (T, error) {
	for {
		c.mu.Lock()
		e := c.m[key]
		if e != nil {
			select {
			case <-e.done:
				ttl := c.okTTL
				if e.err != nil {
					ttl = c.failTTL
				}
				if c.now().Sub(e.at) < ttl {
					c.mu.Unlock()
					return e.val, e.err
				}
			default: // a fill is under way
				c.mu.Unlock()
				select {
				case <-e.done:
					continue
				case <-ctx.Done():
					var zero T
					return zero, ctx.Err()
				}
			}
		}
		c.prune()
		e = &onceEntry[T]{done: make(chan struct{})}
		c.m[key] = e
		c.mu.Unlock()

		v, err := fill(ctx)

		c.mu.Lock()
		e.val, e.err, e.at = v, err, c.now()
		close(e.done)
		if ctx.Err() != nil && err != nil && c.m[key] == e {
			delete(c.m, key) // the caller gave up: try again next time
		}
		c.mu.Unlock()
		return v, err
	}
}

// prune drops expired entries once the map grows; c.mu is held.
func (c *onceCache[K, T]) prune() {
	if len(c.m) < 64 {
		return
	}
	for k, e := range c.m {
		select {
		case <-e.done:
			if c.now().Sub(e.at) >= max(c.okTTL, c.failTTL) {
				delete(c.m, k)
			}
		default:
		}
	}
}

// invalidate forgets every entry. A fill under way keeps its entry, which
// is no longer in the map: the caller that started it gets its answer;
// callers waiting on it, and later ones, fill again.
func (c *onceCache[K, T]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
