package wsproxy

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog is a net.Conn that records each Write it gets.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *writeLog) Read(p []byte) (int, error) { return 0, nil }

func (w *writeLog) log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func TestCoalesceConn(t *testing.T) {
	t.Parallel()
	t.Run("handshake flights leave before each read", func(t *testing.T) {
		t.Parallel()
		w := &writeLog{}
		c := &coalesceConn{Conn: w}
		_, _ = c.Write([]byte("hello-1"))
		_, _ = c.Write([]byte("hello-2"))
		assert.Empty(t, w.log())
		_, _ = c.Read(make([]byte, 1))
		assert.Equal(t, []string{"hello-1hello-2"}, w.log())
	})
	t.Run("the last flight leaves with the request", func(t *testing.T) {
		t.Parallel()
		w := &writeLog{}
		c := &coalesceConn{Conn: w}
		_, _ = c.Write([]byte("finished"))
		c.handshakeDone()
		_, _ = c.Read(make([]byte, 1)) // a reader waiting meanwhile sends nothing
		assert.Empty(t, w.log())
		n, err := c.Write([]byte("GET /"))
		require.NoError(t, err)
		assert.Equal(t, 5, n)
		_, _ = c.Write([]byte("frame"))
		assert.Equal(t, []string{"finishedGET /", "frame"}, w.log())
	})
	t.Run("the last flight leaves alone when no write comes", func(t *testing.T) {
		t.Parallel()
		w := &writeLog{}
		c := &coalesceConn{Conn: w}
		_, _ = c.Write([]byte("finished"))
		c.handshakeDone()
		require.Eventually(t, func() bool { return len(w.log()) == 1 }, 5*time.Second, time.Millisecond)
		_, _ = c.Write([]byte("later"))
		assert.Equal(t, []string{"finished", "later"}, w.log())
	})
	t.Run("stop sends what is held", func(t *testing.T) {
		t.Parallel()
		w := &writeLog{}
		c := &coalesceConn{Conn: w}
		_, _ = c.Write([]byte("finished"))
		c.handshakeDone()
		require.NoError(t, c.stop())
		_, _ = c.Write([]byte("x"))
		assert.Equal(t, []string{"finished", "x"}, w.log())
	})
}
