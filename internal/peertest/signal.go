package peertest

import (
	"os"
	"time"
)

// Signal sends sig to the process itself (not its group).
func (p *Process) Signal(sig os.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit; exited is false when
// it is still running, and err is its exit error (nil for status 0).
func (p *Process) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}
