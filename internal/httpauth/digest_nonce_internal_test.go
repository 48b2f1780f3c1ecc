package httpauth

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDigestNonceCountsNeverRepeat: with concurrent dials, successes
// arrive out of order; one with an older nonce, stored after a newer one
// replaced it (or after the entry was dropped), must not bring back a
// count that later dials then send again (the duplicate TestDigest-
// PreemptiveReuse caught in CI once). The counts live with the nonce, in
// the state every session resumed from one success shares, so whatever
// the Store holds, a nonce's counts only grow.
func TestDigestNonceCountsNeverRepeat(t *testing.T) {
	t.Parallel()
	var store Store
	challenge := func(nonce string) Challenge {
		return Challenge{Scheme: "Digest", Params: map[string]string{"realm": "corp", "nonce": nonce, "qop": "auth"}}
	}
	ncOf := regexp.MustCompile(`nonce="([^"]+)", nc=([0-9a-f]{8})`)
	sent := map[string]bool{}
	record := func(value string) string {
		m := ncOf.FindStringSubmatch(value)
		require.NotNil(t, m, value)
		key := m[1] + "/" + m[2]
		assert.False(t, sent[key], "nonce count sent twice: %s", key)
		sent[key] = true
		return key
	}
	success := func(s *DigestSession) {
		st, user := s.State()
		store.Put("p", &Entry{Scheme: "Digest", Realm: "corp", Username: user, State: st})
	}
	take := func() (*DigestSession, string) {
		e := store.Latest("p")
		require.NotNil(t, e)
		s, value, ok := ResumeDigest(e.State, "h:443", nil)
		require.True(t, ok)
		return s, record(value)
	}

	first := NewDigest("h:443", Credentials{Username: "alice", Password: "pw"})
	v, err := first.Answer(challenge("N1"))
	require.NoError(t, err)
	assert.Equal(t, "N1/00000001", record(v))
	success(first)
	late, _ := take() // N1/2, whose dial succeeds late...
	take()            // N1/3

	other := NewDigest("h:443", Credentials{Username: "alice", Password: "pw"})
	v, err = other.Answer(challenge("N2"))
	require.NoError(t, err)
	record(v)
	success(other) // ...after N2 replaced N1
	_, k := take()
	assert.Equal(t, "N2/00000002", k)
	success(late)
	_, k = take()
	assert.Equal(t, "N1/00000004", k)
	require.True(t, store.Drop("p", "corp", "Digest"))
	success(late) // and again after a drop
	_, k = take()
	assert.Equal(t, "N1/00000005", k)
}
