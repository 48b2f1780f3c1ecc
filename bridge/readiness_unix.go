//go:build unix

package bridge

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// socketReadiness waits until a socket has bytes to read (or an end or an
// error to report) without a buffer: it peeks at one byte, and when there
// is none lets the runtime's poller wait. Peeking first, rather than
// trusting the poller's last wake-up, is what makes it exact: bytes left
// in the socket by a read that filled its buffer are seen at once.
//
// A socket error found by the peek (a reset) is returned by waitReady
// itself: the kernel reports an error once, so the Read after the peek
// would see only the end of the stream.
type socketReadiness struct {
	conn  net.Conn
	rc    syscall.RawConn
	peek  [1]byte
	err   error                 // the error the last peek found
	ready func(fd uintptr) bool // bound once, so waiting allocates nothing
}

// readinessOf returns a waiter for c when it is a socket the runtime
// polls (TCP, Unix), or nil (TLS, pipes, wrappers): the relay then holds
// its buffer for the connection's life.
func readinessOf(c net.Conn) readyWaiter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &socketReadiness{conn: c, rc: rc}
	s.ready = s.peekReady
	return s
}

func (s *socketReadiness) peekReady(fd uintptr) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), s.peek[:], syscall.MSG_PEEK)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return false // nothing yet: wait for the poller
		case err != nil:
			s.err = err
			return true
		default:
			return true // bytes or the end of the stream: Read reports it
		}
	}
}

func (s *socketReadiness) waitReady() error {
	if err := s.rc.Read(s.ready); err != nil {
		return err
	}
	if err := s.err; err != nil {
		s.err = nil
		// Worded as the Read that would have found it.
		return &net.OpError{Op: "read", Net: s.conn.LocalAddr().Network(),
			Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	}
	return nil
}
