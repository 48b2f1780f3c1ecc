package wsproxy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuthCacheNonceCountsNeverRepeat: with concurrent dials, successes
// arrive out of order; one with an older nonce, stored after a newer one
// replaced it (or after the entry was dropped), must not bring back a
// count that later dials then send again (the duplicate TestDigest-
// PreemptiveReuse caught in CI once).
func TestAuthCacheNonceCountsNeverRepeat(t *testing.T) {
	t.Parallel()
	c := &authCache{proxies: make(map[string]*proxyAuth)}
	entry := func(nonce string, nc uint32) *authEntry {
		return &authEntry{scheme: "Digest", realm: "corp", digest: &digestReuse{ch: digestChallenge{nonce: nonce}, nc: nc}}
	}
	sent := map[string]bool{}
	take := func() string {
		e := c.preemptive("p")
		require.NotNil(t, e)
		key := e.digest.ch.nonce + "/" + string(rune('0'+e.digest.nc))
		assert.False(t, sent[key], "nonce count handed out twice: %s", key)
		sent[key] = true
		return key
	}
	c.store("p", entry("N1", 1))
	sent["N1/1"] = true
	take()                 // N1/2
	take()                 // N1/3
	late := entry("N1", 2) // a dial that took N1/2 succeeds late...
	c.store("p", entry("N2", 1))
	sent["N2/1"] = true
	take()             // N2/2
	c.store("p", late) // ...after N2 replaced N1
	assert.Equal(t, "N1/4", take())
	c.drop("p", "corp", "Digest")
	c.store("p", entry("N1", 3)) // and again after a drop
	assert.Equal(t, "N1/5", take())
}
