package bridge_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
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
