package bridge

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/wsproxy/wsproxy/internal/bufpool"
	"github.com/wsproxy/wsproxy/internal/hixie"
)

// connBufSize is the size of the read and write buffers each RFC 6455
// connection keeps for its life (see smallBuffers).
const connBufSize = 1 << 10

// smallBuffers hands coder/websocket's Accept connection buffers of
// connBufSize instead of net/http's 4 KiB ones, which it would keep for
// the connection's life: 6 KiB less per connection, which is most of an
// idle connection's heap. Bulk reads and writes bypass these buffers
// either way (they are larger than them); small messages fit. Bytes the
// client sent after its handshake and net/http already read are kept.
//
// With a plain socket underneath, the library's writer goes through a
// clientWriter, which the bridge then uses to write its data frames
// itself (see clientWriter); out is set.
type smallBuffers struct {
	http.ResponseWriter
	out *clientWriter
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack implements http.Hijacker.
func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var src io.Reader = nc
	n := brw.Reader.Buffered()
	if n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc)
	}
	br := bufio.NewReaderSize(src, max(connBufSize, n))
	if n > 0 {
		// Buffer them now: Accept rebuilds the reader around what is
		// buffered and the raw connection.
		if _, err := br.Peek(n); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	var bw *bufio.Writer
	if w.out = newClientWriter(nc); w.out != nil {
		bw = bufio.NewWriterSize(w.out, controlBufSize)
	} else {
		bw = bufio.NewWriterSize(nc, connBufSize)
	}
	return nc, bufio.NewReadWriter(br, bw), nil
}

// controlBufSize is the library's write buffer when the bridge writes
// the data frames itself (see clientWriter): only control frames pass
// through it, and the largest (a 125-byte payload and its header) fits.
const controlBufSize = 256

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
	sb := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(sb, r, opts)
	if err != nil {
		return nil, err // Accept has answered the request
	}
	wc := &wsConn{c: c, base64: sub == SubprotocolBase64, maxMsg: h.maxMessageSize(), out: sb.out}
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

// wsConn is the RFC 6455 adapter. Client messages are streamed into the
// relay's buffer as they arrive, so a message of any size needs no memory
// of its own: binary messages as they are, text messages (base64 mode)
// decoded group by group. Each Write is one message: binary, or text
// carrying base64 in base64 mode. Binary messages are accepted in base64
// mode as raw bytes; text messages in binary mode close the connection
// with 1003, as websockify does.
//
// In base64 mode a text message is decoded as it streams: its payload
// reaches the target in pieces, and invalid base64 closes the connection
// with 1007 after the valid part before it was passed on (as with the
// legacy framing). A message larger than maxMsg closes it with 1009.
type wsConn struct {
	c      *websocket.Conn
	base64 bool
	maxMsg int64
	seq    *hixie.Seq // base64 mode with seq_num: numbers the messages sent
	// out writes data messages without coder/websocket when the
	// client's connection is a plain socket; nil otherwise (TLS).
	out *clientWriter

	// Read state (one reader goroutine).
	msg     io.Reader    // the message being streamed
	text    bool         // base64 mode: msg is a text message, to decode
	b64     base64Stream // base64 mode: decoding state of the current message
	small   [3]byte      // decoded bytes for a Read whose buffer holds less than a group
	pending []byte       // bytes of small not yet returned

	closeMu    sync.Mutex
	closed     bool
	recvCode   websocket.StatusCode
	recvReason string
	recvOK     bool
}

func (c *wsConn) Subprotocol() string { return c.c.Subprotocol() }
func (c *wsConn) protocol() string    { return "rfc6455" }

// Read implements clientConn. At the end of a message it may return 0
// and no error (see below).
func (c *wsConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	for {
		if c.msg == nil {
			if err := c.nextMessage(); err != nil {
				return 0, err
			}
		}
		var n int
		var err error
		if c.text {
			n, err = c.readText(p)
		} else {
			n, err = c.msg.Read(p)
		}
		if err == io.EOF {
			c.msg = nil
			if n == 0 {
				// The end of a message (coder/websocket reports it on the
				// read after the last bytes). Return, rather than wait
				// here for the next message with p, the relay's
				// buffer: the relay then gives the buffer back and waits
				// in waitReady without it, so a connection idle after
				// traffic holds none.
				return 0, nil
			}
			return n, nil
		}
		if err != nil {
			return n, c.readErr(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// nextMessage waits for the client's next message and makes it current.
func (c *wsConn) nextMessage() error {
	typ, r, err := c.c.Reader(context.Background())
	if err != nil {
		return c.readErr(err)
	}
	if typ == websocket.MessageText && !c.base64 {
		return c.violation(websocket.StatusUnsupportedData, "text messages need the base64 subprotocol",
			errors.New("bridge: client sent a text message in binary mode"))
	}
	c.msg, c.text, c.b64 = r, typ == websocket.MessageText, base64Stream{}
	return nil
}

// waitReady implements readyWaiter: between messages it waits for the
// next one, so the relay holds no buffer while the client is idle.
func (c *wsConn) waitReady() error {
	if c.msg != nil || len(c.pending) > 0 {
		return nil
	}
	return c.nextMessage()
}

// base64Chunk is the most base64 text one Read decodes: 64 KiB of text,
// 48 KiB of payload, from a pooled buffer held only during the Read.
const base64Chunk = 64 << 10

// readText reads the next piece of the current text message and decodes
// its whole base64 groups into p, keeping a split group for the next
// call. It returns io.EOF (with the last bytes) at the end of the message.
func (c *wsConn) readText(p []byte) (int, error) {
	dst := p
	textMax := len(p) / 3 * 4
	if textMax < 4 {
		dst, textMax = c.small[:], 4
	}
	bp := bufpool.Get(min(base64Chunk, textMax))
	defer bufpool.Put(bp)
	text := *bp
	k := c.b64.prefix(text)
	n, rerr := c.msg.Read(text[k:])
	m, err := c.b64.decode(dst, text[:k+n], rerr == io.EOF)
	if err != nil {
		return 0, c.badBase64(err)
	}
	if len(p) < 3 {
		c.pending = c.small[:m]
		m = copy(p, c.pending)
		c.pending = c.pending[m:]
	}
	return m, rerr
}

func (c *wsConn) badBase64(err error) error {
	return c.violation(websocket.StatusInvalidFramePayloadData, "invalid base64",
		fmt.Errorf("bridge: client sent invalid base64: %w", err))
}

// violation closes the connection with code and reason because the client
// broke the protocol, and returns err carrying them for decideEnd.
func (c *wsConn) violation(code websocket.StatusCode, reason string, err error) error {
	c.closeWith(code, reason)
	return &protocolError{closeFrame{code, reason}, err}
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
		if c.out != nil {
			if err := c.out.writeMessage(opBinary, p); err != nil {
				return 0, err
			}
			return len(p), nil
		}
		if err := c.c.Write(context.Background(), websocket.MessageBinary, p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	// A pooled buffer: an idle connection keeps none.
	bp := bufpool.Get(hixie.MaxPayloadLen(len(p)))
	out := hixie.AppendPayload((*bp)[:0], p, c.seq)
	var err error
	if c.out != nil {
		err = c.out.writeMessage(opText, out)
	} else {
		err = c.c.Write(context.Background(), websocket.MessageText, out)
	}
	bufpool.Put(bp)
	if err != nil {
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
