package bridge

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSniff checks the Listener's classification of a new connection
// (peek, and classifyPrefix under it) against the documented rule: a first
// byte 0x16 or 0x80 is TLS, "<policy-file-request/>" is a Flash policy
// request, anything else plain, and a connection that ends while it could
// still be a policy request is dropped. Whatever the way the bytes arrive
// (chunks of any size, EOF with the last data, empty reads), the kind is
// the same, classifyPrefix never changes its mind once decided, and the
// connection handed on (peekedConn) reads exactly the bytes sent: the
// peeked ones first, none lost or repeated.
func FuzzSniff(f *testing.F) {
	for _, s := range []string{
		"\x16\x03\x01\x00\xf8\x01\x00\x00\xf4\x03\x03", "\x80\x2e\x01\x00\x02", FlashPolicyRequest + "\x00", FlashPolicyRequest,
		"<policy-file-request", "<policy-file-request/>GET / HTTP/1.1\r\n", "<policy-file-request/ ", "<p\x16", "",
		"GET /websockify HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
	} {
		f.Add([]byte(s), []byte{})
		f.Add([]byte(s), []byte{1, 0, 0x13, 2, 5, 0x1f})
	}
	f.Fuzz(func(t *testing.T, in, chunks []byte) {
		l := &Listener{opts: ListenerOptions{PeekTimeout: time.Second}}

		// The documented rule, decided on the first bytes.
		var want connKind
		wantErr := false
		switch {
		case len(in) == 0:
			wantErr = true
		case in[0] == 0x16 || in[0] == 0x80:
			want = kindTLS
		case bytes.HasPrefix(in, []byte(FlashPolicyRequest)):
			want = kindPolicy
		case bytes.HasPrefix([]byte(FlashPolicyRequest), in):
			wantErr = true // ended while it could still be a policy request
		default:
			want = kindPlain
		}

		for _, ch := range [][]byte{chunks, nil, {1}} { // as fuzzed, whole reads, one byte at a time
			c := &chunkConn{in: in, chunks: ch}
			if len(ch) == 1 {
				c.chunks = bytes.Repeat(ch, len(in)+1)
			}
			kind, peeked, err := l.peek(c)
			if wantErr {
				if err == nil {
					t.Fatalf("%q (chunks %v): classified %v, want an error", in, ch, kind)
				}
				continue
			}
			if err != nil || kind != want {
				t.Fatalf("%q (chunks %v): %v, %v; want %v", in, ch, kind, err, want)
			}
			if len(peeked) != c.read || !bytes.Equal(peeked, in[:c.read]) || len(peeked) > len(FlashPolicyRequest) {
				t.Fatalf("%q (chunks %v): peeked %q after reading %d bytes", in, ch, peeked, c.read)
			}
			// The next stage reads everything, in order, once.
			var got []byte
			pc := &peekedConn{Conn: c, peeked: peeked}
			buf := make([]byte, 7)
			for {
				n, err := pc.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, in) {
				t.Fatalf("%q (chunks %v): the connection handed on read %q", in, ch, got)
			}
		}

		// classifyPrefix on growing prefixes: once decided it stays so.
		decided := -1
		var first connKind
		for n := 1; n <= min(len(in), len(FlashPolicyRequest)); n++ {
			kind, done := classifyPrefix(in[:n])
			switch {
			case decided < 0 && done:
				decided, first = n, kind
			case decided >= 0 && (!done || kind != first):
				t.Fatalf("%q: classifyPrefix decided %v on %d bytes, then %v, %v on %d", in, first, decided, kind, done, n)
			}
		}
		if !wantErr && (decided < 0 || first != want) {
			t.Fatalf("%q: classifyPrefix says %v, want %v", in, first, want)
		}
	})
}

// chunkConn is a connection reading in from a fake network, in chunks:
// each byte of chunks sets the size of one read (its low four bits; 0 is
// an empty read) and, with 0x10, returns io.EOF together with the last
// bytes. Once chunks run out, reads take all they can.
type chunkConn struct {
	net.Conn // nil: only Read and SetReadDeadline are used
	in       []byte
	chunks   []byte
	read     int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n, eofWithData := len(p), false
	if len(c.chunks) > 0 {
		n, eofWithData = min(n, int(c.chunks[0]&0x0f)), c.chunks[0]&0x10 != 0
		c.chunks = c.chunks[1:]
	}
	n = copy(p[:n], c.in)
	c.in, c.read = c.in[n:], c.read+n
	if len(c.in) == 0 && eofWithData {
		return n, io.EOF
	}
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }
