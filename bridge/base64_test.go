package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
)

// TestBase64Streaming checks the streaming decoder of the base64
// subprotocol: messages larger than one decoding chunk, every padding
// length, line breaks inside the text (which base64 decoders ignore),
// messages fragmented into many frames so groups split across reads, and
// relay buffers smaller than one base64 group.
func TestBase64Streaming(t *testing.T) {
	t.Parallel()
	for _, bufSize := range []int{1, 2, 5, 0} {
		url, _ := echoBridge(t, &bridge.Handler{BufferSize: bufSize})
		c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		sizes := []int{0, 1, 2, 3, 4, 5, 100, 24<<10 - 1, 24 << 10, 24<<10 + 1, 300 << 10}
		if bufSize > 0 && bufSize < 8 {
			sizes = []int{0, 1, 2, 3, 4, 5, 100, 1000}
		}
		var want []byte
		go func() {
			for i, n := range sizes {
				p := randomBytes(t, n)
				want = append(want, p...)
				text := encodeB64(p)
				switch i % 3 {
				case 1: // line breaks every 76 characters, as MIME writes
					var b strings.Builder
					for len(text) > 76 {
						b.WriteString(text[:76] + "\r\n")
						text = text[76:]
					}
					b.WriteString(text)
					text = b.String()
				case 2: // one message in frames of 7 bytes
					w, err := c.Writer(ctx, websocket.MessageText)
					if err != nil {
						return
					}
					for rest := text; len(rest) > 0; rest = rest[min(7, len(rest)):] {
						if _, err := w.Write([]byte(rest[:min(7, len(rest))])); err != nil {
							return
						}
					}
					if w.Close() != nil {
						return
					}
					continue
				}
				if c.Write(ctx, websocket.MessageText, []byte(text)) != nil {
					return
				}
			}
		}()
		total := 0
		for _, n := range sizes {
			total += n
		}
		got := readN(t, c, total, true)
		require.True(t, bytes.Equal(want, got), "buffer %d: echoed bytes differ", bufSize)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	}
}

// TestBase64InvalidMessages checks each kind of broken base64: the
// connection closes with 1007 and the log says why; valid messages
// before the broken one arrive in full.
func TestBase64InvalidMessages(t *testing.T) {
	t.Parallel()
	long := encodeB64(bytes.Repeat([]byte{0xAB}, 90<<10))
	for name, text := range map[string]string{
		"bad character":             "QUJD*EVG",
		"not a multiple of four":    "QUJDRA",
		"data after padding":        "QQ==QUJD",
		"bad character after 64KiB": long[:64<<10] + "!" + long[64<<10:],
		"padding after 64KiB":       long[:64<<10] + "QQ==" + long[64<<10:],
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url, logs := echoBridge(t, &bridge.Handler{})
			c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(encodeB64([]byte("first")))))
			assert.Equal(t, []byte("first"), readN(t, c, 5, true))
			require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(text)))
			var err error
			for err == nil { // the valid start of a long message may echo first
				_, _, err = c.Read(ctx)
			}
			assert.Equal(t, websocket.StatusInvalidFramePayloadData, websocket.CloseStatus(err), "%v", err)
			require.Eventually(t, func() bool { return strings.Contains(logs.String(), "invalid base64") },
				5*time.Second, 10*time.Millisecond)
		})
	}
}

// TestBase64MessageTooBig checks MaxMessageSize in base64 mode: 1009.
func TestBase64MessageTooBig(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{MaxMessageSize: 1000})
	c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(encodeB64(make([]byte, 2000)))))
	var err error
	for err == nil {
		_, _, err = c.Read(ctx)
	}
	assert.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(err), "%v", err)
}

// TestFramesWithTheHandshake sends the opening handshake and the first
// frames in one write, so net/http reads them with the request: the
// bridge must relay them, whatever buffers it gives the connection.
func TestFramesWithTheHandshake(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	for _, n := range []int{1, 3000, 6000} { // within and beyond one buffer
		nc, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
		require.NoError(t, err)
		defer nc.Close()
		payload := randomBytes(t, n)
		var req bytes.Buffer
		req.WriteString("GET / HTTP/1.1\r\nHost: " + strings.TrimPrefix(url, "ws://") + "\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		for chunk := payload; len(chunk) > 0; chunk = chunk[min(1000, len(chunk)):] {
			req.Write(maskedFrame(0x2, chunk[:min(1000, len(chunk))]))
		}
		_, err = nc.Write(req.Bytes())
		require.NoError(t, err)
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		var got []byte
		for len(got) < n {
			hdr := make([]byte, 2)
			_, err := io.ReadFull(br, hdr)
			require.NoError(t, err)
			size := int(hdr[1] & 0x7f)
			if size == 126 {
				ext := make([]byte, 2)
				_, err = io.ReadFull(br, ext)
				require.NoError(t, err)
				size = int(binary.BigEndian.Uint16(ext))
			}
			p := make([]byte, size)
			_, err = io.ReadFull(br, p)
			require.NoError(t, err)
			got = append(got, p...)
		}
		assert.True(t, bytes.Equal(payload, got), "%d bytes sent with the handshake came back different", n)
	}
}

// maskedFrame builds one final client frame of the given opcode.
func maskedFrame(opcode byte, p []byte) []byte {
	f := []byte{0x80 | opcode}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key[:]...)
	for i, b := range p {
		f = append(f, b^key[i%4])
	}
	return f
}
