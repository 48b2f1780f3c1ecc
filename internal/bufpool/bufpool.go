// Package bufpool lends byte buffers by size class so that hot paths (the
// bridge's relay, base64 and legacy framing) allocate nothing per message
// once warm, and idle connections hold no buffer between messages.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 12 // smallest class: 4 KiB
	maxShift = 20 // largest pooled class: 1 MiB
)

// pools[i] holds buffers of capacity 1<<(minShift+i).
var pools [maxShift - minShift + 1]sync.Pool

// class returns the index of the smallest class holding n bytes, or -1
// when n is larger than the largest class.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	s := bits.Len(uint(n - 1))
	if s > maxShift {
		return -1
	}
	return s - minShift
}

// Get returns a buffer of length n, its capacity rounded up to the size
// class (a power of two from 4 KiB to 1 MiB). Larger buffers are
// allocated and not pooled. The contents are not zeroed. Give it back with
// Put when done; keeping it is allowed (it is then collected).
func Get(n int) *[]byte {
	c := class(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(minShift+c))
	return &b
}

// Put returns b to its pool. Buffers whose capacity is not a size class
// (grown by append, or larger than 1 MiB) are dropped. b must not be used
// after Put.
func Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minShift || c > 1<<maxShift || c&(c-1) != 0 {
		return
	}
	pools[bits.Len(uint(c))-1-minShift].Put(b)
}
