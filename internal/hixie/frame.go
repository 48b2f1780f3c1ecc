package hixie

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"

	"github.com/wsproxy/wsproxy/internal/b64"
	"github.com/wsproxy/wsproxy/internal/bufpool"
)

// DefaultMaxFrame is the largest decoded payload one client frame may carry
// when NewDecoder is given a limit of zero or less: 1 MiB. The limit costs
// no memory (frames are decoded as they stream in); it only bounds how long
// one frame may run before the connection is closed.
const DefaultMaxFrame = 1 << 20

// MaxWritePayload is the largest payload the Encoder puts in one frame;
// longer writes are split into several frames. 32 KiB of payload is about
// 43 KiB on the wire, well within what legacy clients accept.
const MaxWritePayload = 32 << 10

// MaxSeqLen is the longest sequence number prefix AppendPayload writes:
// 20 digits (a uint64) and the colon.
const MaxSeqLen = 21

// MaxPayloadLen is the most AppendPayload appends for n payload bytes.
func MaxPayloadLen(n int) int { return MaxSeqLen + base64.StdEncoding.EncodedLen(n) }

// readBufSize is the Decoder's fixed read buffer.
const readBufSize = 16 << 10

// Errors the Decoder returns, wrapped with the details (offset, limit,
// offending byte). Test for them with errors.Is. After one of them the
// stream is unusable and the connection should be closed.
var (
	// ErrFrameTooLarge means a frame's decoded payload exceeded the limit.
	ErrFrameTooLarge = errors.New("legacy frame too large")
	// ErrBadBase64 means a frame held a byte outside the base64 alphabet,
	// misplaced padding, or a length that is not a multiple of four.
	ErrBadBase64 = errors.New("bad base64 in legacy frame")
	// ErrStrayByte means a byte other than a frame start (0x00) or the
	// closing handshake (0xFF 0x00) arrived between frames.
	ErrStrayByte = errors.New("stray byte between legacy frames")
)

type decState uint8

const (
	outside decState = iota // between frames
	inFrame                 // after 0x00, reading base64
	afterFF                 // after 0xFF between frames: expect 0x00
	closed                  // the closing handshake was read
)

var isBase64 [256]bool

func init() {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		isBase64[c] = true
	}
}

// Decoder reads legacy frames (0x00, base64 text, 0xFF) from a client and
// presents their decoded payloads as one byte stream.
//
// It is streaming: bytes of a frame are decoded and returned as soon as
// they arrive, so a complete frame is never held back because the read
// that brought it ended inside the next one, and a partial frame is never
// buffered whole. Its memory is fixed (a 16 KiB read buffer and the decoded
// bytes of one read) whatever the frame size limit. One Read returns bytes
// of at most one frame, so a caller recording per Read sees frame
// boundaries unless the network split a frame.
//
// Read returns io.EOF after the closing handshake 0xFF 0x00 (Closed then
// reports true) or when the connection ends between frames (Hixie-75 has no
// closing handshake); io.ErrUnexpectedEOF when it ends inside a frame; an
// error wrapping ErrFrameTooLarge, ErrBadBase64 or ErrStrayByte on a
// protocol violation, after returning the payload that preceded it. Errors
// are sticky. A Decoder is not safe for concurrent use.
type Decoder struct {
	r   io.Reader
	max int

	buf        []byte // raw bytes; buf[start:end] not yet processed
	start, end int
	rerr       error // error from r, reported once buf is drained

	dec    []byte // decoded bytes; dec[dstart:dend] not yet returned
	dstart int
	dend   int
	state  decState
	groupState
	frameStart int64 // offset of the current frame's 0x00
	offset     int64 // raw bytes consumed before buf[start]
	frames     int64
	err        error
}

// groupState is the decoding state within a frame, saved and restored as
// a whole when decodeSegment retries a segment on its careful path.
type groupState struct {
	quad     [4]byte // a base64 group split across reads
	nq       int
	padded   bool // the current frame's base64 ended with padding
	frameLen int  // decoded bytes in the current frame so far
}

// NewDecoder returns a Decoder reading from r whose frames may carry at
// most maxFrame decoded bytes each; maxFrame <= 0 means DefaultMaxFrame.
func NewDecoder(r io.Reader, maxFrame int) *Decoder {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &Decoder{
		r:   r,
		max: maxFrame,
		buf: make([]byte, readBufSize),
		dec: make([]byte, readBufSize/4*3+3),
	}
}

// Closed reports whether the client sent the closing handshake 0xFF 0x00.
// A Hixie-76 server answers it with the same two bytes (Encoder.WriteClose)
// and closes the connection.
func (d *Decoder) Closed() bool { return d.state == closed }

// Frames returns the number of complete frames read so far.
func (d *Decoder) Frames() int64 { return d.frames }

// Read implements io.Reader over the decoded payloads.
func (d *Decoder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if d.dstart < d.dend {
			n := copy(p, d.dec[d.dstart:d.dend])
			d.dstart += n
			return n, nil
		}
		if d.err != nil {
			return 0, d.err
		}
		d.dstart, d.dend = 0, 0
		if d.start < d.end {
			d.err = d.process()
			continue
		}
		if d.rerr != nil {
			d.err = d.endOfInput(d.rerr)
			continue
		}
		n, err := d.r.Read(d.buf)
		d.start, d.end, d.rerr = 0, n, err
		if n == 0 && err == nil {
			return 0, nil
		}
	}
}

func (d *Decoder) endOfInput(err error) error {
	if err != io.EOF {
		return err
	}
	switch d.state {
	case outside, closed:
		return io.EOF
	case afterFF:
		return fmt.Errorf("connection closed after 0xFF at offset %d: %w", d.offset-1, io.ErrUnexpectedEOF)
	default:
		return fmt.Errorf("connection closed inside the frame at offset %d: %w", d.frameStart, io.ErrUnexpectedEOF)
	}
}

// process consumes buf[start:end] until it has decoded bytes to return at
// the end of a frame or of the buffer, or meets an error or the close.
func (d *Decoder) process() error {
	for d.start < d.end {
		switch d.state {
		case outside:
			switch c := d.buf[d.start]; c {
			case 0x00:
				d.state, d.frameLen, d.padded, d.nq = inFrame, 0, false, 0
				d.frameStart = d.offset
			case 0xFF:
				d.state = afterFF
			default:
				return fmt.Errorf("%w: 0x%02x at offset %d", ErrStrayByte, c, d.offset)
			}
			d.advance(1)
		case afterFF:
			if c := d.buf[d.start]; c != 0x00 {
				return fmt.Errorf("%w: 0xFF 0x%02x at offset %d (length-prefixed frames are not supported)", ErrStrayByte, c, d.offset-1)
			}
			d.advance(1)
			d.state = closed
			return io.EOF
		case closed:
			return io.EOF
		case inFrame:
			raw := d.buf[d.start:d.end]
			seg, end := raw, false
			if i := bytes.IndexByte(raw, 0xFF); i >= 0 {
				seg, end = raw[:i], true
			}
			if err := d.decodeSegment(seg); err != nil {
				return err
			}
			d.advance(len(seg))
			if !end {
				return nil
			}
			if d.nq != 0 {
				return fmt.Errorf("%w: frame at offset %d ends inside a base64 group", ErrBadBase64, d.frameStart)
			}
			d.advance(1)
			d.state = outside
			d.frames++
			if d.dend > 0 {
				return nil // one frame per Read
			}
		}
	}
	return nil
}

func (d *Decoder) advance(n int) {
	d.start += n
	d.offset += int64(n)
}

// decodeSegment decodes base64 text of the current frame into dec. Bytes
// before a violation are decoded and returned first, so the output does not
// depend on how the network split the stream.
//
// The common case, valid text, is decoded in one pass: the base64 decoder
// validates as it goes. Only when it fails (or the text holds CR or LF,
// which it would skip) is the state rolled back and the segment scanned
// for the first byte outside the alphabet, so the error is the same
// whichever path found it.
func (d *Decoder) decodeSegment(seg []byte) error {
	if d.fastPathOK(seg) {
		saved := d.groupState
		dend := d.dend
		if err := d.decodeValid(seg); err == nil {
			return nil
		}
		d.groupState, d.dend = saved, dend
	}
	return d.decodeCarefully(seg)
}

// fastPathOK reports whether decodeSegment may decode seg in one pass:
// no CR or LF (the base64 decoder would skip them), and the bytes that go
// into a partial group (which the decoder sees only once the group is
// complete) are in the alphabet.
func (d *Decoder) fastPathOK(seg []byte) bool {
	if bytes.IndexByte(seg, '\n') >= 0 || bytes.IndexByte(seg, '\r') >= 0 {
		return false
	}
	head := 0
	if d.nq > 0 {
		head = min(4-d.nq, len(seg))
	}
	tail := seg[head+(len(seg)-head)/4*4:]
	return firstNonBase64(seg[:head]) < 0 && firstNonBase64(tail) < 0
}

// firstNonBase64 returns the index of the first byte of b outside the
// base64 alphabet (padding included), or -1.
func firstNonBase64(b []byte) int {
	for i, c := range b {
		if !isBase64[c] {
			return i
		}
	}
	return -1
}

// decodeCarefully finds the first byte of seg outside the alphabet,
// decodes the text before it, and reports it.
func (d *Decoder) decodeCarefully(seg []byte) error {
	bad := firstNonBase64(seg)
	valid := seg
	if bad >= 0 {
		valid = seg[:bad]
	}
	if err := d.decodeValid(valid); err != nil {
		return err
	}
	if bad >= 0 {
		return fmt.Errorf("%w: byte 0x%02x at offset %d", ErrBadBase64, seg[bad], d.offset+int64(bad))
	}
	return nil
}

// decodeValid decodes base64 characters, keeping a group split across
// reads in quad.
func (d *Decoder) decodeValid(seg []byte) error {
	for len(seg) > 0 {
		if d.padded {
			return fmt.Errorf("%w: data after padding in the frame at offset %d", ErrBadBase64, d.frameStart)
		}
		if d.nq > 0 || len(seg) < 4 {
			k := copy(d.quad[d.nq:], seg)
			d.nq += k
			seg = seg[k:]
			if d.nq < 4 {
				return nil
			}
			d.nq = 0
			if err := d.decodeGroups(d.quad[:]); err != nil {
				return err
			}
			continue
		}
		groups := seg[:len(seg)/4*4]
		if i := bytes.IndexByte(groups, '='); i >= 0 {
			// Padding ends the frame's data: decode the groups before it,
			// then the padded group alone, so a bad one fails by itself.
			if i >= 4 {
				groups = groups[:i/4*4]
			} else {
				groups = groups[:4]
			}
		}
		if err := d.decodeGroups(groups); err != nil {
			return err
		}
		seg = seg[len(groups):]
	}
	return nil
}

// decodeGroups decodes whole base64 groups (len(src)%4 == 0, padding only
// in the last one) up to the frame size limit.
func (d *Decoder) decodeGroups(src []byte) error {
	for len(src) > 0 {
		n := (d.max - d.frameLen) / 3 * 4 // groups that surely fit
		if n > len(src) {
			n = len(src)
		}
		if n == 0 {
			n = 4 // fits only if padding makes it short
			if d.frameLen+3-padLen(src[:4]) > d.max {
				return fmt.Errorf("%w: the frame at offset %d exceeds %d bytes", ErrFrameTooLarge, d.frameStart, d.max)
			}
		}
		m, err := b64.Decode(d.dec[d.dend:], src[:n])
		if err != nil {
			return fmt.Errorf("%w: frame at offset %d: %v", ErrBadBase64, d.frameStart, err)
		}
		d.dend += m
		d.frameLen += m
		if src[n-1] == '=' {
			d.padded = true
		}
		src = src[n:]
	}
	return nil
}

func padLen(src []byte) int {
	n := 0
	for i := len(src) - 1; i >= 0 && i >= len(src)-2 && src[i] == '='; i-- {
		n++
	}
	return n
}

// Encoder writes legacy frames to a client: each Write becomes one or more
// frames of at most MaxWritePayload bytes, 0x00, an optional "<n>:"
// sequence number (when Seq is not nil), the base64 payload, 0xFF. Its
// buffer is bounded by the frame size. Write and WriteClose are safe to
// call from different goroutines; frames are never interleaved.
type Encoder struct {
	// Seq, when not nil, numbers the frames (the seq_num query flag).
	Seq *Seq

	mu sync.Mutex
	w  io.Writer
}

// NewEncoder returns an Encoder writing to w without sequence numbers.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Write sends p as frames. An empty p sends one empty frame. It returns
// the number of payload bytes whose frames were written in full.
func (e *Encoder) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// The frame buffer is pooled, so an idle connection keeps none.
	bp := bufpool.Get(2 + MaxPayloadLen(min(len(p), MaxWritePayload))) // with 0x00 and 0xFF
	defer bufpool.Put(bp)
	written := 0
	for {
		chunk := p
		if len(chunk) > MaxWritePayload {
			chunk = chunk[:MaxWritePayload]
		}
		buf := append((*bp)[:0], 0x00)
		buf = AppendPayload(buf, chunk, e.Seq)
		buf = append(buf, 0xFF)
		if _, err := e.w.Write(buf); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
		if len(p) == 0 {
			return written, nil
		}
	}
}

// WriteClose sends the Hixie-76 closing handshake 0xFF 0x00. Hixie-75 has
// none: close the connection instead.
func (e *Encoder) WriteClose() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.w.Write([]byte{0xFF, 0x00})
	return err
}

// AppendPayload appends the text of one frame to the client: "<n>:" when
// seq is not nil (advancing it), then the base64 of p. The bridge's RFC 6455
// base64 mode sends the same text in a text message.
func AppendPayload(dst, p []byte, seq *Seq) []byte {
	if seq != nil {
		dst = seq.Append(dst)
	}
	return b64.AppendEncode(dst, p)
}

// Seq numbers the frames a bridge sends to one client, starting at 0. The
// zero value is ready to use; it is not safe for concurrent use (one
// writer per connection owns it).
type Seq struct{ n uint64 }

// Append appends the next number and a colon ("0:", "1:", ...) to dst.
func (s *Seq) Append(dst []byte) []byte {
	dst = strconv.AppendUint(dst, s.n, 10)
	s.n++
	return append(dst, ':')
}

// SeqNumRequested reports whether a request's query asks for sequence
// numbers: "seq_num" as a bare flag or with the value 1 or true. Other
// values (seq_num=0) leave them off.
func SeqNumRequested(q url.Values) bool {
	vs, ok := q["seq_num"]
	if !ok {
		return false
	}
	for _, v := range vs {
		switch v {
		case "", "1", "true":
			return true
		}
	}
	return false
}
