//go:build !unix

package bridge

import (
	"net"

	"github.com/wsproxy/wsproxy/internal/bufpool"
)

// newTargetReader holds one buffer per connection where reading sockets
// through RawConn is not implemented.
func newTargetReader(c net.Conn, size int) targetReader {
	return &heldBuffer{conn: c, bp: bufpool.Get(size)}
}
