package bridge

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// clientConn is the client side of a bridged connection, whatever its
// protocol: the relay, the limits, the statistics and the taps are written
// once against it, and each protocol (RFC 6455 binary, RFC 6455 base64,
// Hixie-75/76) is an adapter. acceptClient chooses the adapter.
//
// Read and Write see payload bytes only, already decoded (base64, legacy
// framing): Read fills p with bytes the client sent and returns io.EOF once
// the client has closed cleanly (a close frame, the Hixie closing
// handshake); Write sends p to the client as one or more messages. One
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
// when ctx ends first. The heartbeat uses it to find dead peers.
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
// Handler.BufferSize is zero: 32 KiB, which is also the largest message
// the bridge sends to the client.
const DefaultBufferSize = 32 << 10

// bufPools holds relay buffers by size so that steady-state relaying
// allocates nothing per message and connections reuse each other's
// buffers.
var bufPools sync.Map // int -> *sync.Pool of *[]byte

func getBuf(size int) *[]byte {
	p, _ := bufPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool).Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if p, ok := bufPools.Load(len(*b)); ok {
		p.(*sync.Pool).Put(b)
	}
}

// Who ended a connection, for the log line.
const (
	endClient = "client" // client closed or went away
	endTarget = "target" // target closed or failed
	endBridge = "bridge" // idle timeout, heartbeat, shutdown
)

// relayResult is what a finished relay reports.
type relayResult struct {
	fromClient, toClient int64
	endedBy              string
	code                 websocket.StatusCode
	reason               string
	err                  error // the error that ended it, if not a clean close
}

// relay copies bytes between client and target until one side ends,
// then ends the other: target EOF closes the client with 1000 "target
// closed" after everything the target sent was written; client close
// shuts the target's write side after everything the client sent was
// written, then closes the target. activity is stored (UnixNano) on every
// payload for the idle timeout; the counters are updated as bytes move so
// Stats sees live figures. abort, set by the watchdog or Shutdown, wins
// over what the relay would have reported.
type relay struct {
	client  clientConn
	target  net.Conn
	tap     Tap
	bufSize int

	fromClient, toClient atomic.Int64
	activity             atomic.Int64

	abortOnce sync.Once
	aborted   atomic.Bool
	abortCode websocket.StatusCode
	abortWhy  string
	abortErr  error
}

// abort ends the relay from outside (idle timeout, dead peer, shutdown).
// With code 0 the client is dropped without a closing handshake; otherwise
// abort waits (boundedly) for the client to answer the close.
func (r *relay) abort(code websocket.StatusCode, reason string, err error) {
	r.abortOnce.Do(func() {
		r.abortCode, r.abortWhy, r.abortErr = code, reason, err
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

func (r *relay) run() relayResult {
	r.activity.Store(time.Now().UnixNano())
	done := make(chan halfResult, 2)
	go r.clientToTarget(done)
	go r.targetToClient(done)

	first := <-done
	res := relayResult{}
	switch {
	case first.fromClient && first.eof:
		// The client closed: everything it sent has been written, the
		// target's write side is shut. Nothing more can reach the client.
		res.endedBy = endClient
		r.target.Close()
	case first.fromClient && errors.Is(first.err, errTargetWrite):
		res.endedBy, res.err = endTarget, first.err
		res.code, res.reason = websocket.StatusInternalError, "target connection failed"
		r.target.Close()
		r.client.closeWith(res.code, res.reason)
	case first.fromClient:
		// The client went away or broke the protocol; an adapter that
		// detects a violation has already closed with the right code.
		res.endedBy, res.err = endClient, first.err
		r.target.Close()
		r.client.closeWith(0, "")
	case first.eof:
		// The target closed: everything it sent has been written to the
		// client. Close the client and keep relaying its last bytes until
		// it answers the close.
		res.endedBy = endTarget
		res.code, res.reason = websocket.StatusNormalClosure, "target closed"
		r.client.closeWith(res.code, res.reason)
	default:
		res.endedBy, res.err = endTarget, first.err
		if errors.Is(first.err, errClientWrite) {
			res.endedBy = endClient
		} else {
			res.code, res.reason = websocket.StatusInternalError, "target connection failed"
		}
		r.client.closeWith(res.code, res.reason)
		r.target.Close()
	}
	second := <-done
	if errors.Is(res.err, errClientWrite) && second.fromClient && second.err != nil &&
		!errors.Is(second.err, errTargetWrite) {
		// The client adapter closed the connection on a protocol
		// violation (bad base64, an oversized frame) while the other
		// direction was writing to it: the violation is the cause.
		res.err = second.err
	}
	r.target.Close()
	r.client.closeWith(0, "")

	if rc, ok := r.client.(receivedCloser); ok && res.endedBy == endClient {
		if code, reason, ok := rc.receivedClose(); ok {
			res.code, res.reason = code, reason
		}
	}
	if r.aborted.Load() {
		res.endedBy, res.code, res.reason, res.err = endBridge, r.abortCode, r.abortWhy, r.abortErr
	}
	res.fromClient, res.toClient = r.fromClient.Load(), r.toClient.Load()
	return res
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

func (r *relay) clientToTarget(done chan<- halfResult) {
	bp := getBuf(r.bufSize)
	defer putBuf(bp)
	buf := *bp
	for {
		n, err := r.client.Read(buf)
		if n > 0 {
			r.touch()
			if r.tap != nil {
				r.tap.FromClient(buf[:n])
			}
			if _, werr := r.target.Write(buf[:n]); werr != nil {
				done <- halfResult{fromClient: true, err: wrap(errTargetWrite, werr)}
				return
			}
			r.fromClient.Add(int64(n))
		}
		if err == io.EOF {
			closeWrite(r.target)
			done <- halfResult{fromClient: true, eof: true}
			return
		}
		if err != nil {
			done <- halfResult{fromClient: true, err: err}
			return
		}
	}
}

func (r *relay) targetToClient(done chan<- halfResult) {
	bp := getBuf(r.bufSize)
	defer putBuf(bp)
	buf := *bp
	for {
		n, err := r.target.Read(buf)
		if n > 0 {
			r.touch()
			if r.tap != nil {
				r.tap.ToClient(buf[:n])
			}
			if _, werr := r.client.Write(buf[:n]); werr != nil {
				done <- halfResult{err: wrap(errClientWrite, werr)}
				return
			}
			r.toClient.Add(int64(n))
		}
		if err == io.EOF {
			done <- halfResult{eof: true}
			return
		}
		if err != nil {
			done <- halfResult{err: err}
			return
		}
	}
}

// closeWrite shuts the write side of c when it has one (TCP, Unix, TLS),
// so the target sees EOF after the last byte; otherwise it does nothing
// and the full close that follows ends the connection.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
