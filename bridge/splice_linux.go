package bridge

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// spliceSupported: on Linux the relay can move the target's bytes to a
// plain ws:// client without copying them through user space (see
// clientWriter.spliceBinary).
const spliceSupported = true

// queuedBytes returns how many bytes wait unread in the receive queue of
// the socket fd (SIOCINQ).
func queuedBytes(fd uintptr) (int, error) {
	return unix.IoctlGetInt(int(fd), unix.SIOCINQ)
}

// sendHeader sends w.more with MSG_MORE: the kernel holds it back until
// the payload that follows, so header and payload leave together. It is
// bound once (w.send) and called by RawConn.Write, which waits while the
// socket's buffer is full.
func (w *clientWriter) sendHeader(fd uintptr) bool {
	w.serr = nil
	for len(w.more) > 0 {
		n, err := unix.SendmsgN(int(fd), w.more, nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return false
		case err != nil:
			w.serr = err
			return true
		}
		w.more = w.more[n:]
	}
	return true
}
