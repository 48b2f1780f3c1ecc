package bridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/hixie"
)

// The subprotocols the bridge speaks, as websockify and noVNC name them.
const (
	// SubprotocolBinary carries raw bytes in binary messages.
	SubprotocolBinary = "binary"
	// SubprotocolBase64 carries base64 text in text messages, for clients
	// without binary WebSocket support.
	SubprotocolBase64 = "base64"
)

// ErrSubprotocol is returned (and answered with 400) when the client
// offers subprotocols but neither "binary" nor "base64".
var ErrSubprotocol = errors.New("bridge: no supported WebSocket subprotocol offered (the bridge speaks \"binary\" and \"base64\")")

// offeredSubprotocols returns the client's Sec-WebSocket-Protocol offer:
// every header line, split at commas, spaces trimmed, empty items dropped.
func offeredSubprotocols(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Sec-WebSocket-Protocol") {
		for item := range strings.SplitSeq(line, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// chooseSubprotocol picks the answer to an offer: "binary" when offered
// (even after others, even when "base64" is offered too), else "base64",
// else ErrSubprotocol. No offer means binary without a subprotocol in the
// answer (""), as websockify does.
func chooseSubprotocol(offer []string) (string, error) {
	if len(offer) == 0 {
		return "", nil
	}
	base64Offered := false
	for _, p := range offer {
		switch strings.ToLower(p) {
		case SubprotocolBinary:
			return SubprotocolBinary, nil
		case SubprotocolBase64:
			base64Offered = true
		}
	}
	if base64Offered {
		return SubprotocolBase64, nil
	}
	return "", fmt.Errorf("%w; offered: %s", ErrSubprotocol, strings.Join(offer, ", "))
}

// isWebSocketRequest reports whether r asks to upgrade to a WebSocket
// (any version): GET with an Upgrade header naming websocket.
func isWebSocketRequest(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, v := range r.Header.Values("Upgrade") {
		for item := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(item), "websocket") {
				return true
			}
		}
	}
	return false
}

// acceptClient completes the client's opening handshake and returns the
// protocol adapter: the one place where the protocol is chosen. On failure
// it has already answered the request (400 with the reason) and returns
// the error for the log.
func (h *Handler) acceptClient(w http.ResponseWriter, r *http.Request) (clientConn, error) {
	if isHixie(r) {
		hc, err := acceptHixie(w, r, int(min(h.maxMessageSize(), math.MaxInt32)))
		if err != nil {
			return nil, err
		}
		return hc, nil
	}
	sub, err := chooseSubprotocol(offeredSubprotocols(r.Header))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, err
	}
	opts := &websocket.AcceptOptions{
		// The Handler has checked the Origin already (checkOrigin).
		InsecureSkipVerify: true,
	}
	if sub != "" {
		opts.Subprotocols = []string{sub}
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		return nil, err // Accept has answered the request
	}
	wc := &wsConn{c: c, base64: sub == SubprotocolBase64, maxMsg: h.maxMessageSize()}
	if wc.base64 && hixie.SeqNumRequested(r.URL.Query()) {
		wc.seq = new(hixie.Seq) // "<n>:" before each message's base64
	}
	if wc.base64 {
		c.SetReadLimit(wc.maxMsg)
	} else {
		c.SetReadLimit(-1) // messages are streamed, never buffered whole
	}
	return wc, nil
}

// keepBufferBelow is the largest base64 read buffer a connection keeps
// between messages.
const keepBufferBelow = 64 << 10

// wsConn is the RFC 6455 adapter. In binary mode client messages are
// streamed into the relay's buffer as they arrive (a message of any size
// needs no memory of its own) and each Write is one binary message. In
// base64 mode each client text message is read whole (at most maxMsg
// bytes, else the library closes with 1009) and decoded; each Write is one
// text message. Binary messages are accepted in base64 mode as raw bytes;
// text messages in binary mode close the connection with 1003, as
// websockify does.
type wsConn struct {
	c      *websocket.Conn
	base64 bool
	maxMsg int64
	seq    *hixie.Seq // base64 mode with seq_num: numbers the messages sent

	// Read state (one reader goroutine).
	msg     io.Reader // binary mode: the message being streamed
	in      []byte    // base64 mode: the raw message
	dec     []byte    // base64 mode: decoded bytes
	pending []byte    // decoded bytes not yet returned

	// Write state (one writer goroutine).
	out []byte // base64 mode: encoded message

	closeMu    sync.Mutex
	closed     bool
	recvCode   websocket.StatusCode
	recvReason string
	recvOK     bool
}

func (c *wsConn) Subprotocol() string { return c.c.Subprotocol() }
func (c *wsConn) protocol() string    { return "rfc6455" }

// Read implements clientConn.
func (c *wsConn) Read(p []byte) (int, error) {
	if c.base64 {
		return c.readBase64(p)
	}
	for {
		if c.msg == nil {
			typ, r, err := c.c.Reader(context.Background())
			if err != nil {
				return 0, c.readErr(err)
			}
			if typ != websocket.MessageBinary {
				c.closeWith(websocket.StatusUnsupportedData, "text messages need the base64 subprotocol")
				return 0, errors.New("bridge: client sent a text message in binary mode")
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		if err == io.EOF {
			c.msg = nil
			if n == 0 {
				continue // empty message or end of one: take the next
			}
			return n, nil
		}
		if err != nil {
			return n, c.readErr(err)
		}
		return n, nil
	}
}

func (c *wsConn) readBase64(p []byte) (int, error) {
	for len(c.pending) == 0 {
		typ, r, err := c.c.Reader(context.Background())
		if err != nil {
			return 0, c.readErr(err)
		}
		if cap(c.in) > keepBufferBelow {
			c.in, c.dec = nil, nil // one large message does not pin its memory
		}
		c.in = c.in[:0]
		for {
			if len(c.in) == cap(c.in) {
				c.in = append(c.in, 0)[:len(c.in)] // grow; bounded by the read limit
			}
			n, err := r.Read(c.in[len(c.in):cap(c.in)])
			c.in = c.in[:len(c.in)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, c.readErr(err)
			}
		}
		if typ == websocket.MessageBinary {
			c.pending = c.in
			continue
		}
		if need := base64.StdEncoding.DecodedLen(len(c.in)); cap(c.dec) < need {
			c.dec = make([]byte, need)
		}
		n, err := base64.StdEncoding.Decode(c.dec[:cap(c.dec)], c.in)
		if err != nil {
			c.closeWith(websocket.StatusInvalidFramePayloadData, "invalid base64")
			return 0, fmt.Errorf("bridge: client sent invalid base64: %w", err)
		}
		c.pending = c.dec[:n]
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// readErr turns the client's close into io.EOF (remembering its code for
// the log) and leaves other errors as they are.
func (c *wsConn) readErr(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		c.closeMu.Lock()
		if !c.recvOK {
			c.recvCode, c.recvReason, c.recvOK = ce.Code, ce.Reason, true
		}
		c.closeMu.Unlock()
		return io.EOF
	}
	return err
}

// Write implements clientConn: one message per call.
func (c *wsConn) Write(p []byte) (int, error) {
	if !c.base64 {
		if err := c.c.Write(context.Background(), websocket.MessageBinary, p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.out = hixie.AppendPayload(c.out[:0], p, c.seq)
	if err := c.c.Write(context.Background(), websocket.MessageText, c.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) closeWith(code websocket.StatusCode, reason string) error {
	c.closeMu.Lock()
	first := !c.closed
	c.closed = true
	c.closeMu.Unlock()
	if !first || code == 0 {
		err := c.c.CloseNow()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	}
	return c.c.Close(code, reason)
}

func (c *wsConn) receivedClose() (websocket.StatusCode, string, bool) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.recvCode, c.recvReason, c.recvOK
}

// ping implements pinger.
func (c *wsConn) ping(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.c.Ping(ctx)
}
