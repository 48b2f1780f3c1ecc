//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// targetServer is the TCP service behind the bridge. Each connection the
// bridge opens starts with the client's hello, which names the soakConn
// it belongs to; then the target checks the client's stream and sends its
// own.
type targetServer struct {
	ln     *net.TCPListener
	conns  []*soakConn
	hellos chan error // one per accepted connection: nil when paired
	wg     sync.WaitGroup
}

func startTarget(conns []*soakConn) (*targetServer, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	t := &targetServer{ln: ln, conns: conns, hellos: make(chan error, len(conns)+64)}
	t.wg.Add(1)
	go t.serve()
	return t, nil
}

func (t *targetServer) addr() string { return t.ln.Addr().String() }

// close stops accepting and waits for the pairing goroutines.
func (t *targetServer) close() {
	t.ln.Close()
	t.wg.Wait()
}

func (t *targetServer) serve() {
	defer t.wg.Done()
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return // closed
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if err := t.pair(c); err != nil {
				c.Close()
				select {
				case t.hellos <- err:
				default:
				}
				return
			}
			t.hellos <- nil
		}()
	}
}

// pair reads the hello and hands c to its soakConn.
func (t *targetServer) pair(c *net.TCPConn) error {
	var h [helloLen]byte
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return fmt.Errorf("target: reading the hello: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	if !bytes.Equal(h[:4], []byte("SOAK")) {
		return fmt.Errorf("target: bad hello %q", h[:])
	}
	idx := int(binary.BigEndian.Uint32(h[4:]))
	if idx >= len(t.conns) {
		return fmt.Errorf("target: hello names connection %d of %d", idx, len(t.conns))
	}
	if !t.conns[idx].target.CompareAndSwap(nil, c) {
		return fmt.Errorf("target: connection %d arrived twice", idx)
	}
	return nil
}

// waitPaired waits until n connections are paired, and returns the first
// pairing error or a timeout.
func (t *targetServer) waitPaired(ctx context.Context, n int) error {
	for paired := 0; paired < n; {
		select {
		case err := <-t.hellos:
			if err != nil {
				return err
			}
			paired++
		case <-ctx.Done():
			return fmt.Errorf("target: %d of %d connections arrived: %w", paired, n, ctx.Err())
		}
	}
	return nil
}

// targetWrite is the target's sender goroutine. In target-first order it
// then waits for the client's whole stream and shuts its write side.
func (c *soakConn) targetWrite(cfg config, start, end time.Time, drain context.Context) {
	tc := c.target.Load()
	w := newSender(c.streams[down], cfg.seed, float64(cfg.rate), cfg.msg)
	err := w.run(start, end, func(p []byte) error {
		_, err := tc.Write(p)
		return err
	})
	if err != nil {
		c.fail("target %s: %v", dirNames[down], err)
		return
	}
	if c.clientFirst {
		return // the client closes; the target reads EOF
	}
	select {
	case <-c.streams[up].allIn:
	case <-drain.Done():
		return
	}
	if err := tc.CloseWrite(); err != nil {
		c.fail("target CloseWrite: %v", err)
	}
}

// targetRead is the target's receiver goroutine: it checks the client's
// stream until EOF.
func (c *soakConn) targetRead(cfg config) {
	tc := c.target.Load()
	r := newReceiver(c.streams[up], cfg.seed)
	buf := make([]byte, 32<<10)
	for {
		n, err := tc.Read(buf)
		if n > 0 {
			r.take(buf[:n])
		}
		if err == io.EOF {
			r.finish(true)
			return
		}
		if err != nil {
			c.fail("target read: %v", err)
			r.finish(false)
			return
		}
	}
}
