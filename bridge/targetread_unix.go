//go:build unix

package bridge

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/wsproxy/wsproxy/internal/bufpool"
)

// socketReader reads a socket through its RawConn so that the relay
// buffer is borrowed only for the read system call itself: when the
// socket has nothing, the buffer goes back to the pool before the
// runtime's poller waits, so an idle connection holds none. The system
// calls are those of net.Conn.Read (a read, and on EAGAIN a wait and
// another read); nothing is added.
type socketReader struct {
	conn net.Conn
	rc   syscall.RawConn
	size int
	bp   *[]byte
	n    int
	err  error
	fn   func(fd uintptr) bool // bound once, so reading allocates nothing
}

// newTargetReader returns a socketReader for the runtime's own TCP and
// Unix connections and a heldBuffer for anything else (TLS, and wrappers
// from a custom Handler.Dial: one that embeds a *net.TCPConn would still
// offer SyscallConn, and reading the socket underneath would bypass its
// Read).
func newTargetReader(c net.Conn, size int) targetReader {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	}
	if sc != nil {
		if rc, err := sc.SyscallConn(); err == nil {
			s := &socketReader{conn: c, rc: rc, size: size}
			s.fn = s.readFD
			return s
		}
	}
	return &heldBuffer{conn: c, bp: bufpool.Get(size)}
}

func (s *socketReader) readFD(fd uintptr) bool {
	if s.bp == nil {
		s.bp = bufpool.Get(s.size)
	}
	for {
		n, err := syscall.Read(int(fd), *s.bp)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			s.release() // nothing to read: wait without a buffer
			return false
		}
		if n == 0 && err == nil && peerReset(fd) {
			// The end of the stream, but the connection was reset: the
			// kernel reports a reset once, and a write to the target
			// (blocked on a target that stopped reading) may have taken
			// the report. Say it was a reset, not a clean close.
			err = syscall.ECONNRESET
		}
		s.n, s.err = max(n, 0), err
		return true
	}
}

func (s *socketReader) read() ([]byte, int, error) {
	if err := s.rc.Read(s.fn); err != nil {
		return nil, 0, err // closed, or a deadline
	}
	switch {
	case s.err != nil:
		// Worded as net.Conn.Read would have.
		return nil, 0, &net.OpError{Op: "read", Net: s.conn.LocalAddr().Network(),
			Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("read", s.err)}
	case s.n == 0:
		return nil, 0, io.EOF
	}
	return *s.bp, s.n, nil
}

// done gives the buffer back: the next read borrows one again, usually
// the same, from the pool.
func (s *socketReader) done() { s.release() }

func (s *socketReader) release() {
	if s.bp != nil {
		bufpool.Put(s.bp)
		s.bp = nil
	}
}
