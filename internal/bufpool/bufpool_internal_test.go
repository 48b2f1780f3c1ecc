package bufpool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGetRoundsUpToClass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, cap int }{
		{0, 4096}, {1, 4096}, {4096, 4096}, {4097, 8192},
		{32 << 10, 32 << 10}, {32<<10 + 1, 64 << 10}, {1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1}, // beyond the classes: exact, not pooled
	} {
		b := Get(tc.n)
		assert.Len(t, *b, tc.n)
		assert.Equal(t, tc.cap, cap(*b), "Get(%d)", tc.n)
		Put(b)
	}
}

// A buffer whose capacity is not a class (grown by append, or too small
// or too large) is dropped: a later Get never returns it.
func TestPutDropsForeignBuffers(t *testing.T) {
	t.Parallel()
	for _, c := range []int{100, 5000, 6000, 3 << 20} {
		b := make([]byte, 0, c)
		Put(&b) // must not panic
	}
	for _, n := range []int{100, 4096, 5000, 8192} {
		b := Get(n)
		c := cap(*b)
		assert.True(t, c >= n && c&(c-1) == 0, "Get(%d) returned a buffer of capacity %d", n, c)
	}
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	Put(Get(32 << 10))
	allocs := testing.AllocsPerRun(100, func() {
		b := Get(32 << 10)
		(*b)[0] = 1
		Put(b)
	})
	// sync.Pool may drop an item at a GC; allow a fraction of one.
	assert.Less(t, allocs, 0.5)
}
