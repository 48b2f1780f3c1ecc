package bridge

import (
	"crypto/sha256"
	"sync"
	"time"
)

// negativeCache remembers tokens found unknown, for a fixed time and up
// to a fixed number: a ring in insertion order, which with one TTL is
// also expiry order, so the oldest entry is the first to go either way.
// Tokens are kept as SHA-256 digests: memory per entry does not depend on
// the token's length, and no token is kept in the clear.
type negativeCache struct {
	ttl time.Duration

	mu    sync.Mutex
	ring  []negativeEntry
	head  int // oldest entry
	n     int
	until map[[32]byte]time.Time
}

type negativeEntry struct {
	key   [32]byte
	until time.Time
}

func newNegativeCache(ttl time.Duration, size int) *negativeCache {
	return &negativeCache{ttl: ttl, ring: make([]negativeEntry, size), until: make(map[[32]byte]time.Time)}
}

// has reports whether token was found unknown less than ttl before now.
func (c *negativeCache) has(token string, now time.Time) bool {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.until[key]
	return ok && now.Before(until)
}

// add remembers token as unknown from now on.
func (c *negativeCache) add(token string, now time.Time) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 && (c.n == len(c.ring) || !now.Before(c.ring[c.head].until)) {
		c.dropOldest()
	}
	e := negativeEntry{key: key, until: now.Add(c.ttl)}
	c.ring[(c.head+c.n)%len(c.ring)] = e
	c.n++
	c.until[key] = e.until
}

func (c *negativeCache) dropOldest() {
	e := c.ring[c.head]
	// A token added again since has a later entry: keep its time.
	if c.until[e.key].Equal(e.until) {
		delete(c.until, e.key)
	}
	c.ring[c.head] = negativeEntry{}
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

// size returns the number of tokens remembered.
func (c *negativeCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.until)
}
