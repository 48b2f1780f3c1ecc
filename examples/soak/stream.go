//go:build linux

package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// The two directions of a connection.
const (
	up   = 0 // client → bridge → target
	down = 1 // target → bridge → client
)

var dirNames = [2]string{"client→target", "target→client"}

// Each direction of each connection carries its own random byte stream:
// the AES-128-CTR keystream under a key derived from the run's seed, the
// connection's index and the direction. The receiver runs the same
// generator and so knows every byte it should get, without the data
// crossing any other channel. (AES-CTR rather than math/rand's ChaCha8
// for speed: with AES-NI it makes 4 GB/s here against ChaCha8's
// 0.9 GB/s, and generating every byte twice was a quarter of the soak's
// CPU.)
type generator struct{ cipher.Stream }

func newGenerator(run uint64, conn, dir int) generator {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], run)
	binary.LittleEndian.PutUint64(seed[8:], uint64(conn))
	binary.LittleEndian.PutUint64(seed[16:], uint64(dir))
	copy(seed[24:], "wssoak01")
	key := sha256.Sum256(seed[:])
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	return generator{cipher.NewCTR(block, make([]byte, aes.BlockSize))}
}

// fill overwrites p with the next len(p) bytes of the stream.
func (g generator) fill(p []byte) {
	clear(p)
	g.XORKeyStream(p, p)
}

// stream is one direction of one connection, as its sender and its
// receiver account for it. The counters are atomic because the other end
// reads them (see allIn); the rest belongs to one goroutine until the
// connection's goroutines have all returned.
type stream struct {
	conn, dir int

	sent  atomic.Int64 // bytes written so far
	final atomic.Int64 // the total once the sender wrote its last byte; -1 before
	recv  atomic.Int64 // bytes received so far

	// allIn is closed once the receiver has as many bytes as the sender
	// sent in all, which is when the other end may close (see client.go).
	allIn   chan struct{}
	allOnce sync.Once

	// Set by the sender when it finishes.
	sentSum  [32]byte
	maxLag   time.Duration // how far the sender fell behind its schedule
	maxLagAt time.Duration // when, since the start

	// Set by the receiver when it finishes.
	recvSum   [32]byte
	firstDiff int64 // offset of the first byte unlike the expected one; -1 when none
	recvDone  bool  // the stream ended the way the closing order says
}

func newStream(conn, dir int) *stream {
	s := &stream{conn: conn, dir: dir, allIn: make(chan struct{}), firstDiff: -1}
	s.final.Store(-1)
	return s
}

// Both ends check after their own update, with sequentially consistent
// atomics, so whichever comes second closes allIn.
func (s *stream) senderFinished(n int64) {
	s.final.Store(n)
	if s.recv.Load() == n {
		s.allOnce.Do(func() { close(s.allIn) })
	}
}

func (s *stream) received(n int64) {
	s.recv.Store(n)
	if s.final.Load() == n {
		s.allOnce.Do(func() { close(s.allIn) })
	}
}

// sender produces a stream: chunks of random length (1..maxMsg), each the
// next bytes of the stream's generator, paced to rate bytes per second.
type sender struct {
	s      *stream
	gen    generator
	sizes  *rand.Rand
	sum    hash.Hash
	buf    []byte
	rate   float64
	maxMsg int
}

func newSender(s *stream, seed uint64, rate float64, maxMsg int) *sender {
	return &sender{
		s:      s,
		gen:    newGenerator(seed, s.conn, s.dir),
		sizes:  rand.New(rand.NewPCG(seed^0x736f616b, uint64(s.conn)<<1|uint64(s.dir))),
		sum:    sha256.New(),
		buf:    make([]byte, maxMsg),
		rate:   rate,
		maxMsg: maxMsg,
	}
}

// run writes chunks from start until end: a chunk goes once the rate
// allows it and the bytes already sent, so a sender that falls behind
// catches up without pausing; maxLag records the worst delay. It
// publishes the total and the hash once the last chunk is written. An
// error from write ends it without publishing: the stream is then
// reported as not finished.
func (w *sender) run(start, end time.Time, write func([]byte) error) error {
	if d := time.Until(start); d > 0 {
		time.Sleep(d)
	}
	var n int64
	for {
		p := w.buf[:1+w.sizes.IntN(w.maxMsg)]
		due := start.Add(time.Duration(float64(n+int64(len(p))) / w.rate * float64(time.Second)))
		if due.After(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > w.s.maxLag {
			w.s.maxLag, w.s.maxLagAt = -d, due.Sub(start)
		}
		w.gen.fill(p)
		w.sum.Write(p)
		if err := write(p); err != nil {
			return fmt.Errorf("write at offset %d: %w", n, err)
		}
		n += int64(len(p))
		w.s.sent.Store(n)
	}
	w.sum.Sum(w.s.sentSum[:0])
	w.s.senderFinished(n)
	return nil
}

// receiver checks a stream as it arrives: every byte against the
// generator, and the SHA-256 of everything received.
type receiver struct {
	s   *stream
	gen generator
	sum hash.Hash
	exp []byte
	n   int64
}

func newReceiver(s *stream, seed uint64) *receiver {
	return &receiver{
		s:   s,
		gen: newGenerator(seed, s.conn, s.dir),
		sum: sha256.New(),
		exp: make([]byte, 8<<10),
	}
}

// take checks p, the next bytes received. Past the first difference the
// bytes are only counted and hashed: the expected stream has lost its
// alignment with the received one.
func (r *receiver) take(p []byte) {
	r.sum.Write(p)
	if r.s.firstDiff < 0 {
		for off := 0; off < len(p); {
			e := r.exp[:min(len(r.exp), len(p)-off)]
			r.gen.fill(e)
			got := p[off : off+len(e)]
			if !bytes.Equal(got, e) {
				i := 0
				for got[i] == e[i] {
					i++
				}
				r.s.firstDiff = r.n + int64(off+i)
				break
			}
			off += len(e)
		}
	}
	r.n += int64(len(p))
	r.s.received(r.n)
}

// finish records the hash; clean says whether the stream ended the way it
// should (a close or EOF after the last byte).
func (r *receiver) finish(clean bool) {
	r.sum.Sum(r.s.recvSum[:0])
	r.s.recvDone = clean
}

// verdict compares the receiver's account with the sender's; empty means
// the stream arrived whole.
func (s *stream) verdict() string {
	final, recv := s.final.Load(), s.recv.Load()
	prefix := fmt.Sprintf("connection %d %s: ", s.conn, dirNames[s.dir])
	switch {
	case final < 0:
		return prefix + fmt.Sprintf("sender did not finish (%d bytes sent, %d received)", s.sent.Load(), recv)
	case s.firstDiff >= 0:
		return prefix + fmt.Sprintf("corrupted: first difference at byte offset %d (%d sent, %d received)", s.firstDiff, final, recv)
	case recv < final:
		return prefix + fmt.Sprintf("lost bytes: received %d of %d, first missing byte at offset %d", recv, final, recv)
	case recv > final:
		return prefix + fmt.Sprintf("extra bytes: received %d, sent %d, first extra byte at offset %d", recv, final, final)
	case s.sentSum != s.recvSum:
		return prefix + fmt.Sprintf("SHA-256 differs (sent %x, received %x) with equal counts", s.sentSum[:8], s.recvSum[:8])
	case !s.recvDone:
		return prefix + "all bytes arrived but the stream did not end cleanly"
	}
	return ""
}
