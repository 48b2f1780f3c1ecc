//go:build !unix

package bridge

import "net"

// readinessOf returns nil where peeking at sockets is not implemented:
// the relay then holds its buffer for the connection's life.
func readinessOf(net.Conn) readyWaiter { return nil }
