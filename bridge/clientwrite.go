package bridge

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// clientWriter is the write side of an RFC 6455 connection when the
// client's connection is a plain socket: the bridge writes its data
// frames (binary, or text carrying base64) itself, header and payload in
// one writev without copying the payload, and coder/websocket, which has
// no API for that, writes only its control frames (pong, ping, close)
// through Write, below its bufio.Writer. (coder/websocket's Conn.Write
// copies the header and the first kilobyte into its buffer and makes two
// system calls for a large message.)
//
// Frames must never interleave on the wire. Every byte coder/websocket
// writes passes through Write, which takes mu at the first byte of one of
// its frames and holds it until that frame's last byte has been written
// (frameTracker finds the boundaries), so a frame of the library's is
// never cut by one of the bridge's, whatever the size of its writes; the
// bridge's frames hold mu from header to last byte. The library writes a
// frame whole or fails (its bufio.Writer flushes after every frame, and a
// failed write releases mu), so mu is never left held.
//
// Once a write has failed, or the library has sent its close frame, the
// stream is over: nothing more is written (a frame after a broken one
// would be read as its payload, and RFC 6455 allows no data after a
// close frame).
type clientWriter struct {
	sock net.Conn // the client's socket, *net.TCPConn or *net.UnixConn

	mu      sync.Mutex
	inFrame bool // Write holds mu: a frame of coder/websocket's is incomplete
	track   frameTracker
	err     error // set once the stream can carry no more frames

	// Reused per frame, so that writing allocates nothing.
	hdr  [maxHeaderLen]byte
	vec  [2][]byte
	bufs net.Buffers
}

// maxHeaderLen is the longest header of an unmasked frame: 2 bytes and an
// 8-byte length.
const maxHeaderLen = 10

// errClientStreamClosed is returned by clientWriter once a close frame
// has been sent: RFC 6455 allows no data frame after it.
var errClientStreamClosed = errors.New("bridge: close frame already sent to the client")

// newClientWriter returns a clientWriter for nc when nc is a socket the
// bridge can write to directly (a TCP or Unix connection, possibly inside
// the bridge's own Listener wrappers, which change only reads and
// addresses), or nil (TLS, or another wrapper whose writes must not be
// bypassed).
func newClientWriter(nc net.Conn) *clientWriter {
	sock := clientSocket(nc)
	if sock == nil {
		return nil
	}
	return &clientWriter{sock: sock}
}

// clientSocket unwraps the connections the bridge's own listeners make
// (peeked bytes, PROXY protocol addresses, Unix socket addresses) down to
// the runtime's socket, or returns nil.
func clientSocket(c net.Conn) net.Conn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case *net.UnixConn:
			return v
		case *unixConn:
			return v.UnixConn
		case *peekedConn:
			c = v.Conn
		case *proxiedConn:
			c = v.Conn
		default:
			return nil
		}
	}
}

// Write is what coder/websocket's bufio.Writer writes to: the library's
// own frames, in pieces of any size.
func (w *clientWriter) Write(p []byte) (int, error) {
	if !w.inFrame {
		w.mu.Lock()
		w.inFrame = true
	}
	if w.err != nil {
		w.inFrame = false
		w.mu.Unlock()
		return 0, w.err
	}
	atEnd := w.track.feed(p)
	n, err := w.sock.Write(p)
	if err != nil {
		w.err = err
	}
	if atEnd || err != nil {
		w.inFrame = false
		w.mu.Unlock()
	}
	return n, err
}

// usable reports why no frame can be written, if so; mu is held.
func (w *clientWriter) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.track.closeSeen {
		return errClientStreamClosed
	}
	return nil
}

// writeMessage sends p as one message with opcode op (opBinary, opText):
// the header and p in one writev, without copying p.
func (w *clientWriter) writeMessage(op byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.vec[0], w.vec[1] = appendFrameHeader(w.hdr[:0], op, len(p)), p
	w.bufs = w.vec[:]
	_, err := w.bufs.WriteTo(w.sock)
	w.vec[1], w.bufs = nil, nil
	if err != nil {
		w.err = err
	}
	return err
}

// The opcodes of data frames.
const (
	opText   = 0x1
	opBinary = 0x2
)

// appendFrameHeader appends the header of a final, unmasked frame with
// opcode op and an n-byte payload (RFC 6455 section 5.2).
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// frameTracker follows a stream of RFC 6455 frames written in pieces of
// any size, to tell where each frame ends and whether a close frame has
// gone out.
type frameTracker struct {
	hdr       [14]byte // the header read so far (at most 14 bytes, masked)
	nh        int
	left      uint64 // payload bytes of the current frame not yet seen
	closeSeen bool
}

// feed advances over p and reports whether p ends exactly at the end of a
// frame.
func (t *frameTracker) feed(p []byte) bool {
	for len(p) > 0 {
		if t.left > 0 {
			k := min(t.left, uint64(len(p)))
			t.left -= k
			p = p[k:]
			continue
		}
		t.hdr[t.nh] = p[0]
		t.nh++
		p = p[1:]
		if need := headerLen(t.hdr[:t.nh]); need > 0 && t.nh == need {
			t.left = payloadLen(t.hdr[:need])
			if t.hdr[0]&0x0f == 0x8 {
				t.closeSeen = true
			}
			t.nh = 0
		}
	}
	return t.left == 0 && t.nh == 0
}

// headerLen is the length of the frame header that starts with h, or 0
// while h is too short to tell.
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// payloadLen reads the payload length from a complete header.
func payloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}
