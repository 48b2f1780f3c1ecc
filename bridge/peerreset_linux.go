package bridge

import "golang.org/x/sys/unix"

// peerReset reports whether the TCP connection on fd was reset by its
// peer: after a reset Linux moves the socket straight to CLOSE, while a
// clean close from the peer leaves it in CLOSE_WAIT (or TIME_WAIT when
// this side had closed first). It reports false for other sockets.
func peerReset(fd uintptr) bool {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	return err == nil && info.State == tcpClose
}

// tcpClose is Linux's TCP_CLOSE state (include/net/tcp_states.h).
const tcpClose = 7
