package bridge

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/bufpool"
)

// clientConn is the client side of a bridged connection, whatever its
// protocol: the relay, the limits, the statistics and the taps are written
// once against it, and each protocol (RFC 6455 binary, RFC 6455 base64,
// Hixie-75/76) is an adapter. acceptClient chooses the adapter.
//
// Read and Write see payload bytes only, already decoded (base64, legacy
// framing): Read fills p with bytes the client sent and returns io.EOF once
// the client has closed cleanly (a close frame, the Hixie closing
// handshake), and may return 0 bytes and no error between messages, so
// that the relay gives its buffer back before waiting for the next one
// (see readyWaiter); Write sends p to the client as one or more messages. One
// goroutine reads while another writes; a Read is never called
// concurrently with another Read, nor a Write with another Write.
//
// closeWith ends the connection and unblocks any Read or Write in
// progress. It sends code and reason when the protocol carries them (RFC
// 6455) and waits a bounded time for the client's answer; adapters without
// close codes ignore them. It is safe to call more than once and from any
// goroutine; only the first call's code and reason are sent.
//
// protocol names the protocol for logs ("rfc6455", "hixie-76", ...).
type clientConn interface {
	io.Reader
	io.Writer
	closeWith(code websocket.StatusCode, reason string) error
	Subprotocol() string
	protocol() string
}

// pinger is implemented by adapters whose protocol has pings (RFC 6455):
// ping sends one and returns when the answer arrives, or with an error
// when timeout passes first (or the connection closes). The heartbeat uses it to find dead peers.
type pinger interface {
	ping(timeout time.Duration) error
}

// receivedCloser is implemented by adapters that can report the close
// code and reason the client sent, for the connection's log line.
type receivedCloser interface {
	receivedClose() (websocket.StatusCode, string, bool)
}

// Tap observes the payload of a bridged connection in both directions: a
// recorder (see Recording) or a traffic display (see TrafficLegend). It is
// called from the relay's two goroutines, one per direction, so an
// implementation must be safe for concurrent use; it must not keep p after
// returning and should be fast, since the relay waits for it.
type Tap interface {
	// FromClient sees bytes the client sent, before they go to the target.
	FromClient(p []byte)
	// ToClient sees bytes the target sent, before they go to the client.
	ToClient(p []byte)
}

// DefaultBufferSize is the relay's buffer per direction when
// Handler.BufferSize is zero: 64 KiB, which is also the largest message
// the bridge sends to the client.
const DefaultBufferSize = 64 << 10

// Who ended a connection, for the log line.
const (
	endClient = "client" // client closed or went away
	endTarget = "target" // target closed or failed
	endBridge = "bridge" // idle timeout, heartbeat, shutdown
)

// relayResult is what a finished relay reports: how it ended (decided by
// decideEnd) and the bytes moved each way.
type relayResult struct {
	endDecision
	fromClient, toClient int64
}

// relay copies bytes between client and target until one side ends,
// then ends the other as decideEnd says (target EOF: the client is closed
// with 1000 "target closed" after everything the target sent was
// written; client close: run shuts the target's write side, through
// drainTarget, after everything the client sent was written). activity
// is stored (UnixNano) on every payload for the idle timeout; the
// counters are updated as bytes move so Stats sees live figures. abort,
// called by the watchdog or Shutdown, wins over what the relay would have
// reported.
type relay struct {
	client  clientConn
	target  net.Conn
	tap     Tap
	bufSize int

	fromClient, toClient atomic.Int64
	activity             atomic.Int64
	// writingTarget is set while the client's bytes wait in a write to
	// the target: nothing reads the client meanwhile, so its pongs go
	// unread too (see watchdog.heartbeat).
	writingTarget atomic.Bool

	// The end of the relay: the half that finishes first is acted on at
	// once (see react); run decides the rest once both ended.
	firstEnded    atomic.Bool
	first, second halfResult

	abortOnce sync.Once
	aborted   atomic.Bool
	abortWhy  abortCause // written once, before aborted is set
}

// abort ends the relay from outside (idle timeout, dead peer, shutdown).
// With code 0 the client is dropped without a closing handshake; otherwise
// abort waits (boundedly) for the client to answer the close.
func (r *relay) abort(code websocket.StatusCode, reason string, err error) {
	r.abortOnce.Do(func() {
		r.abortWhy = abortCause{closeFrame{code, reason}, err}
		r.aborted.Store(true)
		// Closing the client first sends our code; its reader then ends,
		// and run closes the target.
		r.client.closeWith(code, reason)
		r.target.Close()
	})
}

type halfResult struct {
	fromClient bool // which direction finished
	eof        bool // the reading side ended cleanly
	err        error
}

// run relays until both directions have ended, then finishes the target
// as decideEnd says and reports. The client-to-target direction runs on
// the caller's goroutine and the other on one more, so a connection costs
// two goroutines.
func (r *relay) run() relayResult {
	r.activity.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.halfDone(r.targetToClient())
	}()
	r.halfDone(r.clientToTarget())
	<-done

	in := endInput{first: r.first, second: &r.second}
	if r.aborted.Load() {
		in.abort = &r.abortWhy
	}
	if rc, ok := r.client.(receivedCloser); ok {
		if code, reason, ok := rc.receivedClose(); ok {
			in.received = &closeFrame{code, reason}
		}
	}
	d := decideEnd(in)
	if d.shutTargetWrite {
		drainTarget(r.target)
	}
	r.target.Close()
	r.client.closeWith(0, "")
	return relayResult{endDecision: d, fromClient: r.fromClient.Load(), toClient: r.toClient.Load()}
}

// halfDone records the end of one direction. The first to end reacts,
// on its own goroutine, while the other may still be moving bytes.
func (r *relay) halfDone(h halfResult) {
	if r.firstEnded.CompareAndSwap(false, true) {
		r.first = h
		r.react(decideEnd(endInput{first: h}))
		return
	}
	r.second = h
}

// react ends the other direction as decideEnd said when the first one
// ended. When the client closed cleanly the target's socket stays open:
// run drains it (see drainTarget), and only then closes it, so the target
// learns of the end only after this direction is known to have ended
// first, and a target closing in answer is never taken for the cause.
func (r *relay) react(d endDecision) {
	if d.target == targetClose {
		r.target.Close()
	}
	r.client.closeWith(d.send.code, d.send.reason)
	switch d.target {
	case targetStopReads:
		if r.target.SetReadDeadline(time.Now()) != nil {
			r.target.Close()
		}
	case targetBoundWrites:
		if r.target.SetWriteDeadline(time.Now().Add(targetDrainTimeout)) != nil {
			r.target.Close()
		}
	}
}

var (
	errTargetWrite = errors.New("write to target")
	errClientWrite = errors.New("write to client")
)

type wrapErr struct {
	kind, err error
}

func (e *wrapErr) Error() string         { return e.kind.Error() + ": " + e.err.Error() }
func (e *wrapErr) Unwrap() []error       { return []error{e.kind, e.err} }
func wrap(kind, err error) *wrapErr      { return &wrapErr{kind, err} }
func (r *relay) touch()                  { r.activity.Store(time.Now().UnixNano()) }
func (r *relay) lastActivity() time.Time { return time.Unix(0, r.activity.Load()) }

// readyWaiter is implemented by a source that can wait for its next bytes
// without a buffer: the relay then borrows its buffer only while bytes
// move, and an idle connection holds none.
type readyWaiter interface {
	waitReady() error
}

// borrowing lends the relay buffer of one direction: get waits until src
// has bytes (when it can tell) and returns the buffer; done gives the
// buffer back after a read that did not fill it (src is likely drained),
// and keeps it while bulk data streams.
type borrowing struct {
	size int
	wait readyWaiter // nil: hold the buffer for the whole connection
	bp   *[]byte
}

func (b *borrowing) get() ([]byte, error) {
	if b.bp == nil {
		if b.wait != nil {
			if err := b.wait.waitReady(); err != nil {
				return nil, err
			}
		}
		b.bp = bufpool.Get(b.size)
	}
	return *b.bp, nil
}

func (b *borrowing) done(n int) {
	if b.wait != nil && n < b.size {
		b.release()
	}
}

func (b *borrowing) release() {
	if b.bp != nil {
		bufpool.Put(b.bp)
		b.bp = nil
	}
}

func (r *relay) clientToTarget() halfResult {
	b := borrowing{size: r.bufSize}
	b.wait, _ = r.client.(readyWaiter)
	defer b.release()
	for {
		buf, err := b.get()
		n := 0
		if err == nil {
			n, err = r.client.Read(buf)
		}
		if n > 0 {
			r.touch()
			if r.tap != nil {
				r.tap.FromClient(buf[:n])
			}
			r.writingTarget.Store(true)
			_, werr := r.target.Write(buf[:n])
			r.writingTarget.Store(false)
			if werr != nil {
				return halfResult{fromClient: true, err: wrap(errTargetWrite, werr)}
			}
			r.fromClient.Add(int64(n))
		}
		b.done(n)
		if err == io.EOF {
			return halfResult{fromClient: true, eof: true} // run shuts the target's write side (drainTarget)
		}
		if err != nil {
			return halfResult{fromClient: true, err: err}
		}
	}
}

func (r *relay) targetToClient() halfResult {
	src := newTargetReader(r.target, r.bufSize)
	defer src.release()
	for {
		buf, n, err := src.read()
		if n > 0 {
			r.touch()
			if r.tap != nil {
				r.tap.ToClient(buf[:n])
			}
			if _, werr := r.client.Write(buf[:n]); werr != nil {
				return halfResult{err: wrap(errClientWrite, werr)}
			}
			r.toClient.Add(int64(n))
		}
		src.done()
		if err == io.EOF {
			return halfResult{eof: true}
		}
		if err != nil {
			return halfResult{err: err}
		}
	}
}

// targetReader reads the target into a relay buffer. read returns the
// buffer and the count; done says the caller is finished with the bytes
// (a reader may then give the buffer back); release ends it.
type targetReader interface {
	read() (buf []byte, n int, err error)
	done()
	release()
}

// heldBuffer is the targetReader for connections the runtime cannot poll
// for us (TLS, wrappers): it holds one buffer for the connection's life.
type heldBuffer struct {
	conn net.Conn
	bp   *[]byte
}

func (h *heldBuffer) read() ([]byte, int, error) {
	n, err := h.conn.Read(*h.bp)
	return *h.bp, n, err
}

func (h *heldBuffer) done() {}

func (h *heldBuffer) release() {
	if h.bp != nil {
		bufpool.Put(h.bp)
		h.bp = nil
	}
}

// closeWrite shuts the write side of c when it has one (TCP, Unix, TLS),
// so the target sees EOF after the last byte, and reports whether it did;
// otherwise only a full close ends the stream.
func closeWrite(c net.Conn) bool {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite() == nil
	}
	return false
}

// targetDrainTimeout bounds how long a target's connection stays open
// after the client closed cleanly, for the target to read the client's
// last bytes and the end of the stream (see drainTarget). Targets usually
// close as soon as they read the end, which ends the wait.
const targetDrainTimeout = 5 * time.Second

// drainTarget ends the target's side of a connection whose client closed
// cleanly. Closing a socket that holds unread bytes (the target may still
// be sending) resets the connection, and the reset throws away what is
// still queued for the target: the client's last bytes, the target then
// seeing a truncated stream. So it shuts the write side (the target reads
// the end of the stream after the last byte), then reads and discards
// until the target closes, having read everything, or targetDrainTimeout
// passes. Without a write side to shut it does nothing.
func drainTarget(c net.Conn) {
	if !closeWrite(c) {
		return
	}
	_ = c.SetDeadline(time.Now().Add(targetDrainTimeout))
	bp := bufpool.Get(4 << 10)
	defer bufpool.Put(bp)
	for {
		if _, err := c.Read(*bp); err != nil {
			return
		}
	}
}
