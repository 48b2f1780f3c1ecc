package wsproxy

import (
	"net"
	"sync"
	"time"
)

// coalesceConn makes the last flight of a TLS handshake leave in one
// segment with the first write after it (the HTTP upgrade request).
// Without it they leave as two small segments, and a proxy that relays
// them with Nagle's algorithm on (tinyproxy does) holds the second until
// the target's delayed ACK, about 40 ms later on Linux; sent together
// they cross the proxy together.
//
// During the handshake (one goroutine writes, then reads), writes are held
// and each Read sends them first. After handshakeDone, what is held waits
// for the next write and leaves with it, or leaves alone after
// coalesceWait if no write comes; from then on writes pass through.
type coalesceConn struct {
	net.Conn
	mu      sync.Mutex
	held    []byte
	passing bool        // writes go straight through
	after   bool        // the handshake is done: a write or the timer sends held
	timer   *time.Timer // sends held if no write comes after the handshake
}

// coalesceWait bounds how long the handshake's last flight may wait for
// the request to join it.
const coalesceWait = 5 * time.Millisecond

func (c *coalesceConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passing {
		return c.Conn.Write(p)
	}
	if c.after {
		c.passing = true
		c.timer.Stop()
		held := append(c.held, p...)
		c.held = nil
		if _, err := c.Conn.Write(held); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

func (c *coalesceConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	var err error
	if !c.after {
		err = c.flushLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *coalesceConn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// handshakeDone lets the held flight wait for the next write.
func (c *coalesceConn) handshakeDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passing || len(c.held) == 0 {
		c.passing = true
		return
	}
	c.after = true
	c.timer = time.AfterFunc(coalesceWait, func() { _ = c.stop() })
}

// stop sends anything held and passes writes through from now on. A write
// error here shows again on the connection's next write.
func (c *coalesceConn) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.passing = true
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.flushLocked()
}
