//go:build !linux

package bridge

import "errors"

// spliceSupported: splicing is implemented for Linux only; elsewhere the
// target's bytes are copied through the relay's buffer.
const spliceSupported = false

var errNoSplice = errors.New("bridge: splice is not supported on this system")

func queuedBytes(uintptr) (int, error) { return 0, errNoSplice }

func (w *clientWriter) sendHeader(uintptr) bool {
	w.serr = errNoSplice
	return true
}
