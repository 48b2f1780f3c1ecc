// Package hixietest is a small Hixie-75/76 client for tests. It builds its
// handshake the way draft-76 tells a client to (random keys with spaces and
// noise characters) and checks the server's answer from the numbers it
// chose, not by parsing its own keys, so it does not share mistakes with
// package hixie. It is validated against npm websocket-driver's server.
package hixietest

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wsproxy/wsproxy/internal/hixie"
)

// Options describe the handshake to send.
type Options struct {
	Version  hixie.Version // Hixie75 or Hixie76 (the default)
	Path     string        // request target, default "/"
	Host     string        // Host header, default the dialled address
	Origin   string        // default "http://" + Host (a page served by the same host)
	Protocol string        // offered subprotocol, none when empty
	TLS      *tls.Config   // non-nil: wss (TLS to the server)
	// Header adds request header lines (e.g. Authorization).
	Header http.Header
}

// Conn is an open legacy WebSocket connection.
type Conn struct {
	net.Conn
	br       *bufio.Reader
	Version  hixie.Version
	Response *http.Response // the 101 answer (Body is empty)
}

// Dial connects to addr and performs the opening handshake. It fails when
// the server does not answer 101 with the headers and (Hixie-76) the
// challenge answer the draft requires; the error then holds the status.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if opts.Version == hixie.NotHixie {
		opts.Version = hixie.Hixie76
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if opts.Host == "" {
		opts.Host = addr
	}
	if opts.Origin == "" {
		opts.Origin = "http://" + opts.Host
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if opts.TLS != nil {
		conf := opts.TLS
		if conf.ServerName == "" && !conf.InsecureSkipVerify {
			conf = conf.Clone()
			conf.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c, err := handshake(nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func handshake(nc net.Conn, opts Options) (*Conn, error) {
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nHost: %s\r\nOrigin: %s\r\n", opts.Path, opts.Host, opts.Origin)
	var n1, n2 uint32
	var key3 []byte
	prefix := ""
	if opts.Version == hixie.Hixie76 {
		prefix = "Sec-"
		var k1, k2 string
		n1, k1 = newKey()
		n2, k2 = newKey()
		key3 = make([]byte, 8)
		_, _ = rand.Read(key3)
		fmt.Fprintf(&req, "Sec-WebSocket-Key1: %s\r\nSec-WebSocket-Key2: %s\r\n", k1, k2)
	}
	if opts.Protocol != "" {
		fmt.Fprintf(&req, "%sWebSocket-Protocol: %s\r\n", prefix, opts.Protocol)
	}
	for name, vs := range opts.Header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", name, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(nc, req.String()+string(key3)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("read handshake answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, &HandshakeError{StatusCode: resp.StatusCode, Body: string(body)}
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "WebSocket") || !strings.EqualFold(resp.Header.Get("Connection"), "Upgrade") {
		return nil, fmt.Errorf("101 without Upgrade: WebSocket / Connection: Upgrade: %v", resp.Header)
	}
	scheme := "ws://"
	if opts.TLS != nil {
		scheme = "wss://"
	}
	if got, want := resp.Header.Get(prefix+"WebSocket-Location"), scheme+opts.Host+opts.Path; got != want {
		return nil, fmt.Errorf("%sWebSocket-Location %q, want %q", prefix, got, want)
	}
	if got := resp.Header.Get(prefix + "WebSocket-Origin"); got != opts.Origin {
		return nil, fmt.Errorf("%sWebSocket-Origin %q, want %q", prefix, got, opts.Origin)
	}
	if opts.Version == hixie.Hixie76 {
		var challenge [16]byte
		binary.BigEndian.PutUint32(challenge[0:], n1)
		binary.BigEndian.PutUint32(challenge[4:], n2)
		copy(challenge[8:], key3)
		want := md5.Sum(challenge[:])
		var got [16]byte
		if _, err := io.ReadFull(br, got[:]); err != nil {
			return nil, fmt.Errorf("read challenge answer: %w", err)
		}
		if got != want {
			return nil, fmt.Errorf("challenge answer %x, want %x", got, want)
		}
	}
	return &Conn{Conn: nc, br: br, Version: opts.Version, Response: resp}, nil
}

// HandshakeError is a non-101 answer.
type HandshakeError struct {
	StatusCode int
	Body       string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused: %d %s", e.StatusCode, strings.TrimSpace(e.Body))
}

// newKey makes a Hixie-76 key as draft-76 section 4.1 describes: a random
// number times a random count of spaces, with 1 to 12 random noise
// characters and the spaces inserted (never first or last).
func newKey() (uint32, string) {
	spaces := 1 + randN(12)
	number := uint32(randN(int(4294967295 / uint32(spaces))))
	key := []byte(strconv.FormatUint(uint64(number)*uint64(spaces), 10))
	noise := []byte("!\"#$%&'()*+,-./:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")
	for i, n := 0, 1+randN(12); i < n; i++ {
		at := randN(len(key) + 1)
		key = append(key[:at], append([]byte{noise[randN(len(noise))]}, key[at:]...)...)
	}
	for i := 0; i < spaces; i++ {
		at := 1 + randN(len(key)-1)
		key = append(key[:at], append([]byte{' '}, key[at:]...)...)
	}
	return number, string(key)
}

func randN(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err)
	}
	return int(v.Int64())
}

// SendText sends one frame holding s as is.
func (c *Conn) SendText(s string) error {
	_, err := c.Write([]byte("\x00" + s + "\xff"))
	return err
}

// Send sends p base64-encoded in one frame, as websockify's clients do.
func (c *Conn) Send(p []byte) error { return c.SendText(base64.StdEncoding.EncodeToString(p)) }

// ErrClosed is returned by ReadText after the closing handshake 0xFF 0x00.
var ErrClosed = errors.New("closing handshake received")

// ReadText reads one frame and returns its text. Frames longer than 16 MiB
// are an error.
func (c *Conn) ReadText() (string, error) {
	b, err := c.br.ReadByte()
	if err != nil {
		return "", err
	}
	switch b {
	case 0x00:
	case 0xFF:
		n, err := c.br.ReadByte()
		if err != nil {
			return "", err
		}
		if n == 0x00 {
			return "", ErrClosed
		}
		return "", fmt.Errorf("length-prefixed frame 0xFF 0x%02x", n)
	default:
		return "", fmt.Errorf("unexpected frame type 0x%02x", b)
	}
	var text []byte
	for {
		chunk, err := c.br.ReadSlice(0xFF)
		text = append(text, chunk...)
		if err == nil {
			return string(text[:len(text)-1]), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		if len(text) > 16<<20 {
			return "", errors.New("frame over 16 MiB")
		}
	}
}

// Recv reads one frame and decodes it: an optional "<n>:" sequence number
// (-1 when absent) and the base64 payload.
func (c *Conn) Recv() (seq int, payload []byte, err error) {
	text, err := c.ReadText()
	if err != nil {
		return -1, nil, err
	}
	seq = -1
	if num, rest, ok := strings.Cut(text, ":"); ok {
		if seq, err = strconv.Atoi(num); err != nil {
			return -1, nil, fmt.Errorf("bad sequence number in %q", text)
		}
		text = rest
	}
	payload, err = base64.StdEncoding.DecodeString(text)
	if err != nil {
		return seq, nil, fmt.Errorf("frame %q: %w", text, err)
	}
	return seq, payload, nil
}

// CloseHandshake sends 0xFF 0x00 (Hixie-76) and waits up to timeout for
// the server's 0xFF 0x00 or the end of the connection, discarding frames
// still in flight; then it closes the connection. For Hixie-75, which has
// no closing handshake, it just closes.
func (c *Conn) CloseHandshake(timeout time.Duration) error {
	defer c.Close()
	if c.Version != hixie.Hixie76 {
		return nil
	}
	if _, err := c.Write([]byte{0xFF, 0x00}); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, err := c.ReadText()
		switch {
		case errors.Is(err, ErrClosed), errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}
