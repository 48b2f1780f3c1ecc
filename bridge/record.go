package bridge

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRecordLimit caps one recording file when NewRecorder is given a
// limit of zero: 100 MiB.
const DefaultRecordLimit = 100 << 20

const (
	recordHeader = "var VNC_frame_data = [\n"
	recordFooter = "'EOF'];\n"
)

// Recorder writes one recording per connection in the format noVNC's
// playback tools (tests/vnc_playback.html) load as a script:
//
//	var VNC_frame_data = [
//	'{12{RFB 003.008\n',
//	'}15}RFB 003.008\n',
//	'EOF'];
//
// Each line between the first and the last is one frame: '{' frames went
// to the client, '}' frames came from it; the number is milliseconds since
// the WebSocket opened; the data is the payload as a JavaScript string,
// printable ASCII kept, \\ \' \t \n \r escaped and every other byte
// written as \xHH. The file is rewritten so that it ends with the last
// line after every frame, which keeps it complete and valid whatever ends
// the connection, even a killed process.
//
// Recordings hold everything the client typed, passwords included: files
// are created with mode 0600. A Recorder is safe for concurrent use.
type Recorder struct {
	base  string
	limit int64
	n     atomic.Int64
}

// NewRecorder returns a Recorder writing base.1, base.2, ... in the order
// connections open (existing files are overwritten). limit caps each
// file's size in bytes: zero means DefaultRecordLimit, negative means no
// cap. A capped recording keeps its first frames and stays valid.
func NewRecorder(base string, limit int64) *Recorder {
	if limit == 0 {
		limit = DefaultRecordLimit
	}
	return &Recorder{base: base, limit: limit}
}

// Open creates the next connection's file and starts its clock: call it
// when the WebSocket has opened. It fails when the file cannot be created
// or written; the connection can go on without a recording.
func (r *Recorder) Open() (*Recording, error) {
	path := r.base + "." + strconv.FormatInt(r.n.Add(1), 10)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if _, err := f.WriteAt([]byte(recordHeader+recordFooter), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("record: %w", err)
	}
	return &Recording{f: f, path: path, start: time.Now(), pos: int64(len(recordHeader)), limit: r.limit}, nil
}

// Recording is one connection's file. Its methods are safe for concurrent
// use (the two directions of a relay call them from their goroutines) and
// never fail the connection: a write error stops the recording, and Err
// reports it.
type Recording struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	start  time.Time
	pos    int64 // where the next frame line goes; the footer starts here
	limit  int64
	full   bool
	closed bool
	err    error
	buf    []byte
}

// Path returns the file's name, base.<n>.
func (r *Recording) Path() string { return r.path }

// ToClient records a frame the bridge sent to the client.
func (r *Recording) ToClient(p []byte) { r.frame('{', p) }

// FromClient records a frame the client sent to the bridge.
func (r *Recording) FromClient(p []byte) { r.frame('}', p) }

func (r *Recording) frame(dir byte, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := time.Since(r.start).Milliseconds() // under the lock: lines stay in time order
	if r.closed || r.full || r.err != nil {
		return
	}
	b := append(r.buf[:0], '\'', dir)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, dir)
	b = appendJSEscaped(b, p)
	b = append(b, "',\n"...)
	line := len(b)
	b = append(b, recordFooter...)
	if r.limit > 0 && r.pos+int64(len(b)) > r.limit {
		r.full = true
		return
	}
	if _, err := r.f.WriteAt(b, r.pos); err != nil {
		r.err = err
		return
	}
	r.pos += int64(line)
	if cap(b) <= 64<<10 {
		r.buf = b // keep a modest buffer for the next frame
	}
}

// Truncated reports whether frames were left out because the size cap was
// reached.
func (r *Recording) Truncated() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full
}

// Size returns the file's current size in bytes.
func (r *Recording) Size() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos + int64(len(recordFooter))
}

// Err returns the write error that stopped the recording, if any.
func (r *Recording) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close closes the file, which is already complete. Later frames are
// ignored; closing twice is harmless.
func (r *Recording) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.f.Close()
	if r.err != nil {
		err = errors.Join(r.err, err)
	}
	return err
}

const hexDigits = "0123456789abcdef"

// appendJSEscaped appends p as the inside of a single-quoted JavaScript
// string whose characters' codes are the bytes of p.
func appendJSEscaped(dst, p []byte) []byte {
	for _, c := range p {
		switch {
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '\'':
			dst = append(dst, '\\', '\'')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
		default:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xF])
		}
	}
	return dst
}

// OpenTap opens the connection's recording; use it as Handler.OpenTap
// (the Handler closes the Recording when the connection ends).
func (r *Recorder) OpenTap(ConnInfo) (Tap, error) {
	rec, err := r.Open()
	if err != nil {
		return nil, err
	}
	return rec, nil
}
