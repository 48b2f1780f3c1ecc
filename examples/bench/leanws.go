//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/wsproxy/wsproxy/internal/b64"
)

// leanWS is the bench's RFC 6455 client for the relay scenarios: it costs
// the client's share of the two cores about what a raw TCP client costs
// (a header, a masking pass, one writev per message; payload read
// straight into the caller's buffer), so that the relays, not the client,
// are what the figures compare. A general-purpose client such as
// coder/websocket masks through a 4 KiB buffer and writes each 64 KiB
// message in sixteen system calls, which on two shared cores takes CPU
// from the relay it measures. Every WebSocket contestant (the bridge and
// websockify) gets this same client, and it frames exactly as RFC 6455
// says: a fresh masking key per frame (from a fast PRNG, not a CSPRNG: the
// key protects proxies' caches, not secrets), fin set, binary or text.
//
// In base64 mode each Write is one text message of base64 and Read
// decodes whole text messages.
type leanWS struct {
	c      *net.TCPConn
	br     *bufio.Reader
	base64 bool
	rng    *mrand.PCG

	// Read state.
	left    int64 // payload bytes of the current data frame still to read
	raw     []byte
	pending []byte
	dec     []byte

	// Write state, reused.
	hdr  [14]byte
	out  []byte
	enc  []byte
	vec  [2][]byte
	bufs net.Buffers
}

// dialLean opens a WebSocket to addr offering subprotocol ("binary" or
// "base64") and checks the answer.
func dialLean(ctx context.Context, addr, subprotocol string) (*leanWS, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := nc.(*net.TCPConn)
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + subprotocol + "\r\n\r\n"
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		err = fmt.Errorf("handshake: status %d", resp.StatusCode)
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		err = errors.New("handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != subprotocol:
		err = fmt.Errorf("handshake: server chose subprotocol %q, not %q", resp.Header.Get("Sec-WebSocket-Protocol"), subprotocol)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return &leanWS{c: c, br: br, base64: subprotocol == "base64", rng: mrand.NewPCG(binary.LittleEndian.Uint64(key[:]), binary.LittleEndian.Uint64(key[8:]))}, nil
}

// Write sends p as one message.
func (w *leanWS) Write(p []byte) (int, error) {
	op, payload := byte(0x2), p
	if w.base64 {
		w.enc = b64.AppendEncode(w.enc[:0], p)
		op, payload = 0x1, w.enc
	}
	h := append(w.hdr[:0], 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		h = append(h, 0x80|byte(n))
	case n <= 0xffff:
		h = binary.BigEndian.AppendUint16(append(h, 0x80|126), uint16(n))
	default:
		h = binary.BigEndian.AppendUint64(append(h, 0x80|127), uint64(n))
	}
	key := uint32(w.rng.Uint64())
	h = binary.LittleEndian.AppendUint32(h, key)
	if cap(w.out) < len(payload) {
		w.out = make([]byte, len(payload))
	}
	out := w.out[:len(payload)]
	maskInto(out, payload, key)
	w.vec[0], w.vec[1] = h, out
	w.bufs = w.vec[:]
	if _, err := w.bufs.WriteTo(w.c); err != nil {
		return 0, err
	}
	return len(p), nil
}

// maskInto writes src XOR the repeated 4-byte key (little-endian as it
// stands in the header) to dst, eight bytes at a time.
func maskInto(dst, src []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k8)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ byte(key>>(8*(i%4)))
	}
}

// Read returns payload of the data messages received.
func (w *leanWS) Read(p []byte) (int, error) {
	if w.base64 {
		return w.readBase64(p)
	}
	for w.left == 0 {
		if err := w.nextData(); err != nil {
			return 0, err
		}
	}
	n, err := w.br.Read(p[:min(int64(len(p)), w.left)])
	w.left -= int64(n)
	return n, err
}

// readBase64 decodes whole text messages.
func (w *leanWS) readBase64(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if err := w.nextData(); err != nil {
			return 0, err
		}
		if cap(w.raw) < int(w.left) {
			w.raw = make([]byte, w.left)
		}
		w.raw = w.raw[:w.left]
		if _, err := io.ReadFull(w.br, w.raw); err != nil {
			return 0, err
		}
		w.left = 0
		if need := base64.StdEncoding.DecodedLen(len(w.raw)); cap(w.dec) < need {
			w.dec = make([]byte, need)
		}
		n, err := b64.Decode(w.dec[:cap(w.dec)], w.raw)
		if err != nil {
			return 0, fmt.Errorf("bad base64 from server: %w", err)
		}
		w.pending = w.dec[:n]
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// nextData reads frame headers up to the next data frame (continuation
// frames included) and sets left to its payload length. A close frame
// ends the stream (io.EOF); pings and pongs are skipped (the servers
// measured send none unless asked).
func (w *leanWS) nextData() error {
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return err
		}
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return err
			}
			n = int64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return err
			}
			n = int64(binary.BigEndian.Uint64(b[:]))
		}
		if h[1]&0x80 != 0 {
			return errors.New("server sent a masked frame")
		}
		switch h[0] & 0x0f {
		case 0x0, 0x1, 0x2:
			w.left = n
			return nil
		case 0x8:
			return io.EOF
		default:
			if _, err := w.br.Discard(int(n)); err != nil {
				return err
			}
		}
	}
}

// Close closes the TCP connection (the relays log an abnormal closure,
// as they would for a client that went away; the bench reads no logs).
func (w *leanWS) Close() error { return w.c.Close() }
