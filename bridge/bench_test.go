package bridge_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
	"github.com/wsproxy/wsproxy/internal/peertest"
	"github.com/wsproxy/wsproxy/internal/wstest"
)

// BenchmarkRelayBinary measures a 4 KiB binary round trip through the
// bridge to a TCP echo (client → bridge → echo → bridge → client). The
// allocations reported include the client's; the bridge's own steady
// state allocates nothing per message.
func BenchmarkRelayBinary(b *testing.B) {
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(b)}, Logger: slog.New(slog.DiscardHandler)}
	url := serveB(b, h)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	msg := make([]byte, 4096)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(msg); {
			_, r, err := c.Reader(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for {
				n, err := r.Read(buf[got:])
				got += n
				if err != nil {
					break
				}
			}
		}
	}
}

// BenchmarkRelayModes measures a 64 KiB round trip through the bridge to
// a TCP echo in each client protocol. The client's own encoding work is
// included (it runs in the same process), so compare the modes with each
// other and with BenchmarkRelayBinary rather than reading the figures as
// the bridge's alone; -cpuprofile separates the two.
func BenchmarkRelayModes(b *testing.B) {
	const size = 64 << 10
	for _, mode := range []string{"binary", "base64", "hixie-76"} {
		b.Run(mode, func(b *testing.B) {
			h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(b)}, Logger: slog.New(slog.DiscardHandler)}
			url := serveB(b, h)
			rw := dialMode(b, url, mode)
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(i * 7)
			}
			buf := make([]byte, size)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rw.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rw, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dialMode opens a client in one of the bridge's protocols as a byte
// stream. The base64 and legacy clients reuse their buffers, as a
// browser's would, so the benchmark measures the bridge.
func dialMode(b *testing.B, url, mode string) io.ReadWriter {
	ctx := context.Background()
	switch mode {
	case "hixie-76":
		c, err := hixietest.Dial(ctx, strings.TrimPrefix(url, "ws://"), hixietest.Options{Protocol: "base64"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return struct {
			io.Reader
			io.Writer
		}{hixie.NewDecoder(c, 1<<20), hixie.NewEncoder(c)}
	case "base64":
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.CloseNow() })
		c.SetReadLimit(-1)
		return &wstest.Base64Conn{C: c}
	default:
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.CloseNow() })
		return websocket.NetConn(ctx, c, websocket.MessageBinary)
	}
}
