//go:build linux

package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// soakConn is one bridged connection: its WebSocket client, the TCP
// connection the target accepted for it, and its two streams.
//
// A WebSocket close ends both directions at once (the bridge closes the
// target when the client closes, and closes the client when the target
// half-closes), so a side may only close once everything the other side
// sent has arrived. Both ends live in this process: a side that has
// written its last byte waits for the other direction's allIn, then
// closes. Even connections close from the client (WebSocket close 1000
// "done"; the bridge shuts the target's write side, the target reads EOF),
// odd ones from the target (CloseWrite; the bridge closes the client with
// 1000 "target closed"), so both of the bridge's closing paths are soaked.
type soakConn struct {
	idx         int
	clientFirst bool
	streams     [2]*stream

	ws     *websocket.Conn
	target atomic.Pointer[net.TCPConn]

	closing atomic.Bool // the client started the close handshake
	forced  atomic.Bool // forceClose ran: later errors are its echo

	mu   sync.Mutex
	errs []string
}

func newSoakConn(idx int) *soakConn {
	return &soakConn{idx: idx, clientFirst: idx%2 == 0, streams: [2]*stream{newStream(idx, up), newStream(idx, down)}}
}

func (c *soakConn) fail(format string, args ...any) {
	if c.forced.Load() {
		return // the reason was recorded before the force
	}
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf("connection %d: ", c.idx)+fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *soakConn) failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// forceClose drops both ends without a handshake (drain timeout or
// interrupt): blocked reads and writes return.
func (c *soakConn) forceClose() {
	c.forced.Store(true)
	c.closeEnds()
}

// closeEnds releases both ends; after a clean end both are closed
// already, and this frees what is left.
func (c *soakConn) closeEnds() {
	if c.ws != nil {
		_ = c.ws.CloseNow()
	}
	if t := c.target.Load(); t != nil {
		_ = t.Close()
	}
}

// The first bytes a client sends, before its stream, name the connection
// so that the target can pair the TCP connection the bridge opens with
// the client: "SOAK" and the index, big-endian.
const helloLen = 8

func hello(idx int) []byte {
	b := make([]byte, helloLen)
	copy(b, "SOAK")
	binary.BigEndian.PutUint32(b[4:], uint32(idx))
	return b
}

// soakHTTPClient keeps handshakes off any proxy settings of the machine.
var soakHTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// dial opens c's WebSocket and sends the hello.
func (c *soakConn) dial(ctx context.Context, addr, subprotocol string) error {
	ws, resp, err := websocket.Dial(ctx, (&url.URL{Scheme: "ws", Host: addr, Path: "/"}).String(), &websocket.DialOptions{
		Subprotocols: []string{subprotocol},
		HTTPClient:   soakHTTPClient,
	})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return fmt.Errorf("dial: %w", err)
	}
	if got := ws.Subprotocol(); got != subprotocol {
		ws.CloseNow()
		return fmt.Errorf("bridge chose subprotocol %q, not %q", got, subprotocol)
	}
	// The bridge's messages are at most its relay buffer (tens of KiB),
	// or that in base64; the limit only guards against a runaway.
	ws.SetReadLimit(4 << 20)
	c.ws = ws
	if err := c.send(ctx, subprotocol, hello(c.idx), nil); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	return nil
}

// send writes p as one message: binary, or base64 text (enc is the
// reusable encoding buffer).
func (c *soakConn) send(ctx context.Context, subprotocol string, p []byte, enc *[]byte) error {
	if subprotocol != "base64" {
		return c.ws.Write(ctx, websocket.MessageBinary, p)
	}
	var buf []byte
	if enc != nil {
		buf = *enc
	}
	n := base64.StdEncoding.EncodedLen(len(p))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	base64.StdEncoding.Encode(buf, p)
	if enc != nil {
		*enc = buf
	}
	return c.ws.Write(ctx, websocket.MessageText, buf)
}

// clientWrite is the client's sender goroutine. In client-first order it
// then waits for the target's whole stream and closes with 1000.
func (c *soakConn) clientWrite(cfg config, start, end time.Time, drain context.Context) {
	s := c.streams[up]
	w := newSender(s, cfg.seed, float64(cfg.rate), cfg.msg)
	var enc []byte
	err := w.run(start, end, func(p []byte) error { return c.send(context.Background(), cfg.subprotocol, p, &enc) })
	if err != nil {
		c.fail("client %s: %v", dirNames[up], err)
		return
	}
	if !c.clientFirst {
		return // the target closes; the reader sees it
	}
	select {
	case <-c.streams[down].allIn:
	case <-drain.Done():
		return // reported as a stall by run
	}
	c.closing.Store(true)
	if err := c.ws.Close(websocket.StatusNormalClosure, "done"); err != nil {
		// coder/websocket gives the bridge 5 s to answer.
		c.fail("client close handshake: %v", err)
	}
}

// clientRead is the client's receiver goroutine: it checks the target's
// stream until the WebSocket closes.
func (c *soakConn) clientRead(cfg config) {
	r := newReceiver(c.streams[down], cfg.seed)
	buf := make([]byte, 32<<10)
	var raw, dec []byte
	for {
		typ, mr, err := c.ws.Reader(context.Background())
		if err != nil {
			r.finish(c.clientReadEnd(err))
			return
		}
		if cfg.subprotocol != "base64" {
			if typ != websocket.MessageBinary {
				c.fail("client got a %v message in binary mode", typ)
				r.finish(false)
				return
			}
			for {
				n, err := mr.Read(buf)
				if n > 0 {
					r.take(buf[:n])
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					r.finish(c.clientReadEnd(err))
					return
				}
			}
			continue
		}
		if typ != websocket.MessageText {
			c.fail("client got a %v message in base64 mode", typ)
			r.finish(false)
			return
		}
		raw = raw[:0]
		for {
			if len(raw) == cap(raw) {
				raw = append(raw, 0)[:len(raw)]
			}
			n, err := mr.Read(raw[len(raw):cap(raw)])
			raw = raw[:len(raw)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				r.finish(c.clientReadEnd(err))
				return
			}
		}
		if need := base64.StdEncoding.DecodedLen(len(raw)); cap(dec) < need {
			dec = make([]byte, need)
		}
		n, err := base64.StdEncoding.Decode(dec[:cap(dec)], raw)
		if err != nil {
			c.fail("client got invalid base64 after %d bytes: %v", r.n, err)
			r.finish(false)
			return
		}
		r.take(dec[:n])
	}
}

// clientReadEnd judges how the client's reading ended and reports whether
// that was the expected, clean end.
func (c *soakConn) clientReadEnd(err error) bool {
	var ce websocket.CloseError
	if c.clientFirst {
		if !c.closing.Load() {
			c.fail("client read ended before the client closed: %v", err)
			return false
		}
		// Our own close: the reader sees the bridge's answer, or the
		// closed connection when Close read the answer itself.
		if errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure || errors.Is(err, net.ErrClosed) {
			return true
		}
		c.fail("client read after its close: %v", err)
		return false
	}
	if errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure && ce.Reason == "target closed" {
		return true
	}
	c.fail("client read: want close 1000 \"target closed\", got %v", err)
	return false
}
