package bridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/hixie"
)

// hixieHandshakeTimeout bounds reading the Hixie-76 key bytes and writing
// the 101 answer after the connection is hijacked.
const hixieHandshakeTimeout = 10 * time.Second

// hixieConn is the legacy protocol adapter: Read returns the decoded
// payloads of the client's 0x00 base64 0xFF frames, Write sends each call
// as frames (with "<n>:" sequence numbers when the query asked for
// seq_num), and closeWith ends the connection with the closing handshake
// (Hixie-76) when it can. It implements clientConn.
type hixieConn struct {
	nc      net.Conn
	r       io.Reader
	dec     *hixie.Decoder
	enc     *hixie.Encoder
	version hixie.Version
	proto   string

	clientClosed atomic.Bool // the client sent the closing handshake

	mu        sync.Mutex
	sentClose bool
	closed    bool
}

// isHixie reports whether r opens a legacy (Hixie-75/76) WebSocket.
func isHixie(r *http.Request) bool { return hixie.Detect(r.Header) != hixie.NotHixie }

// hixieSubprotocol picks the answer to a legacy client's subprotocol
// offer. The legacy framing carries text only, so the bridge speaks base64
// in it whatever is offered; it echoes "base64" when offered (websockify's
// and web-socket-js's clients offer it), answers no subprotocol when none
// was offered, and refuses an offer without base64.
func hixieSubprotocol(offer string) (string, error) {
	if offer == "" {
		return "", nil
	}
	for _, p := range strings.FieldsFunc(offer, func(r rune) bool { return r == ',' || r == ' ' }) {
		if strings.EqualFold(p, "base64") {
			return "base64", nil
		}
	}
	return "", fmt.Errorf("subprotocol %q not supported over Hixie: the legacy protocol carries base64 only", offer)
}

// acceptHixie answers a legacy opening handshake on w and returns the
// adapter. On a bad request it writes 400 with the reason and returns the
// error; after hijacking, errors close the connection. maxFrame caps the
// client's frames (0: hixie.DefaultMaxFrame).
func acceptHixie(w http.ResponseWriter, r *http.Request, maxFrame int) (*hixieConn, error) {
	hs, err := hixie.Parse(r, r.TLS != nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, err
	}
	if hs.Protocol, err = hixieSubprotocol(hs.Protocol); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, err
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		err := errors.New("hixie: the ResponseWriter cannot be hijacked (HTTP/2?)")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, err
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("hixie: hijack: %w", err)
	}
	_ = nc.SetDeadline(time.Now().Add(hixieHandshakeTimeout))
	var key3 []byte
	if hs.Version == hixie.Hixie76 {
		if key3, err = hixie.ReadKey3(brw.Reader); err != nil {
			nc.Close()
			return nil, fmt.Errorf("hixie: %w", err)
		}
	}
	resp, err := hs.AppendResponse(nil, key3)
	if err == nil {
		_, err = nc.Write(resp)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("hixie: write handshake answer: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})

	c := &hixieConn{nc: nc, r: nc, version: hs.Version, proto: hs.Protocol}
	if n := brw.Reader.Buffered(); n > 0 {
		// Frames that came with the request: read them before the socket.
		c.r = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), nc)
	}
	c.dec = hixie.NewDecoder(c.r, maxFrame)
	c.enc = hixie.NewEncoder(nc)
	if hixie.SeqNumRequested(r.URL.Query()) {
		c.enc.Seq = new(hixie.Seq)
	}
	return c, nil
}

// Read returns decoded client payload; io.EOF when the client closed
// (closing handshake, or end of connection between frames). A protocol
// violation (oversized frame, bad base64, stray byte) is returned as an
// error that says which.
func (c *hixieConn) Read(p []byte) (int, error) {
	n, err := c.dec.Read(p)
	if err != nil && c.dec.Closed() {
		c.clientClosed.Store(true) // for closeWith, on another goroutine
	}
	return n, err
}

// Write sends p to the client as frames.
func (c *hixieConn) Write(p []byte) (int, error) { return c.enc.Write(p) }

// Subprotocol returns the answered subprotocol ("base64" or "").
func (c *hixieConn) Subprotocol() string { return c.proto }

// protocol returns "hixie-75" or "hixie-76", for logs.
func (c *hixieConn) protocol() string { return c.version.String() }

// hixieCloseWait bounds how long closeWith waits for the client's answer
// to the closing handshake.
const hixieCloseWait = time.Second

// closeWith ends the connection; the legacy protocol has no close codes,
// so code and reason only choose between a clean and an abrupt end. With
// a code, Hixie-76 sends the closing handshake 0xFF 0x00 and gives the
// client hixieCloseWait to answer (the reader then sees io.EOF) before the
// socket is closed by the final call; without one the socket closes at
// once, after answering a closing handshake the client sent. Hixie-75 has
// no closing handshake and always just closes.
func (c *hixieConn) closeWith(code websocket.StatusCode, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	clientClosed := c.clientClosed.Load()
	if c.version == hixie.Hixie76 && !c.sentClose && (code != 0 || clientClosed) {
		c.sentClose = true
		_ = c.nc.SetWriteDeadline(time.Now().Add(hixieCloseWait))
		_ = c.enc.WriteClose()
		if code != 0 && !clientClosed {
			_ = c.nc.SetReadDeadline(time.Now().Add(hixieCloseWait))
			return nil
		}
	}
	c.closed = true
	err := c.nc.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
