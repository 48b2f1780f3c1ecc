package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWSReadReturnsAtMessageEnd: once a message has been read, the next
// Read returns at once (0 bytes, no error) instead of waiting for the
// next message with the caller's buffer, so the relay gives its buffer
// back and a connection idle after traffic holds none; waitReady then
// waits for the next message without a buffer.
func TestWSReadReturnsAtMessageEnd(t *testing.T) {
	t.Parallel()
	conns := make(chan *wsConn, 1)
	done := make(chan struct{})
	h := &Handler{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc, err := h.acceptClient(w, r)
		if err != nil {
			return
		}
		conns <- cc.(*wsConn)
		<-done
		cc.closeWith(0, "")
	}))
	defer srv.Close()
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{SubprotocolBinary}})
	require.NoError(t, err)
	defer c.CloseNow()
	wc := <-conns

	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("hello")))
	buf := make([]byte, 64)
	require.NoError(t, wc.waitReady())
	n, err := wc.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))

	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := wc.Read(buf)
		res <- result{n, err}
	}()
	select {
	case r := <-res:
		assert.Equal(t, result{}, r, "at the end of a message: 0 bytes, no error")
	case <-time.After(10 * time.Second):
		t.Fatal("Read waited for the next message with the caller's buffer")
	}

	ready := make(chan error, 1)
	go func() { ready <- wc.waitReady() }()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("again")))
	require.NoError(t, <-ready)
	n, err = wc.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "again", string(buf[:n]))
}
