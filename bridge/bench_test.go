package bridge_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
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

// BenchmarkRelayTargetBulk measures the target-to-client direction alone:
// the target streams without pause and each op reads 64 KiB of binary
// messages, which the bridge writes itself (header and payload in one
// writev, see clientWriter). The bridge allocates nothing per message;
// the figure includes the client's reading. docs/benchmarks.md compares
// this path with a spliced one.
func BenchmarkRelayTargetBulk(b *testing.B) {
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: streamingTarget(b)}, Logger: slog.New(slog.DiscardHandler)}
	url := serveB(b, h)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	const size = 64 << 10
	buf := make([]byte, size)
	var r io.Reader
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for got := 0; got < size; {
			if r == nil {
				if _, r, err = c.Reader(ctx); err != nil {
					b.Fatal(err)
				}
			}
			n, err := r.Read(buf[:size-got])
			got += n
			if err == io.EOF {
				r = nil
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// streamingTarget accepts TCP connections and writes to each without
// pause until it is closed or the benchmark ends.
func streamingTarget(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := make([]byte, 256<<10)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}
