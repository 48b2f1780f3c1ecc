package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFrame builds one frame: fin, opcode op, payload of n bytes, masked
// when mask is set (the tracker must skip a mask key too).
func testFrame(op byte, n int, mask bool) []byte {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, m|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, m|127), uint64(n))
	}
	if mask {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// checkTracker feeds stream in pieces cut at cuts and checks that feed
// reports a frame boundary exactly at the ends in ends.
func checkTracker(t *testing.T, stream []byte, ends map[int]bool, cuts []int, wantClose bool) {
	t.Helper()
	var tr frameTracker
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		if c <= prev || c > len(stream) {
			continue
		}
		if got := tr.feed(stream[prev:c]); got != ends[c] {
			t.Fatalf("feed up to byte %d of %d: boundary %v, want %v", c, len(stream), got, ends[c])
		}
		prev = c
	}
	assert.Equal(t, wantClose, tr.closeSeen, "close frame seen")
}

func TestFrameTracker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		frames [][]byte
		close  bool
	}{
		{"pong and ping", [][]byte{testFrame(0xA, 0, false), testFrame(0x9, 125, false)}, false},
		{"16-bit and 64-bit lengths", [][]byte{testFrame(0x2, 126, false), testFrame(0x2, 70000, false)}, false},
		{"masked frames", [][]byte{testFrame(0x2, 5, true), testFrame(0x1, 300, true)}, false},
		{"close after data", [][]byte{testFrame(0x2, 10, false), testFrame(0x8, 2, false)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, ends := joinFrames(tc.frames)
			for step := 1; step <= len(stream); step += 1 + step/3 {
				var cuts []int
				for c := step; c < len(stream); c += step {
					cuts = append(cuts, c)
				}
				checkTracker(t, stream, ends, cuts, tc.close)
			}
		})
	}
}

func joinFrames(frames [][]byte) ([]byte, map[int]bool) {
	var stream []byte
	ends := map[int]bool{}
	for _, f := range frames {
		stream = append(stream, f...)
		ends[len(stream)] = true
	}
	return stream, ends
}

// FuzzFrameTracker builds frames whose opcodes, lengths and masks come
// from the input and cuts the stream at input-chosen points: the tracker
// must find every frame's end, wherever the writes split it.
func FuzzFrameTracker(f *testing.F) {
	f.Add([]byte{0x02, 0x10, 0x88, 0x00, 0x09, 0x7e}, []byte{1, 3, 7})
	f.Add([]byte{0x8a, 0x7f, 0x01, 0x00}, []byte{2})
	f.Fuzz(func(t *testing.T, spec, cutSpec []byte) {
		var frames [][]byte
		close := false
		for i := 0; i+1 < len(spec) && len(frames) < 16; i += 2 {
			op, size := spec[i]&0x0f, int(spec[i+1])
			if spec[i+1] >= 0xf0 {
				size = int(spec[i+1]) * 300 // 16- and 64-bit lengths
			}
			frames = append(frames, testFrame(op, size, spec[i]&0x80 != 0))
			close = close || op == 0x8
		}
		stream, ends := joinFrames(frames)
		var cuts []int
		at := 0
		for _, c := range cutSpec {
			at += int(c) + 1
			cuts = append(cuts, at)
		}
		checkTracker(t, stream, ends, cuts, close)
	})
}

func TestAppendFrameHeader(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		want := testFrame(opBinary, n, false)
		got := appendFrameHeader(nil, opBinary, n)
		assert.Equal(t, want[:len(got)], got, "header for %d bytes", n)
		assert.Equal(t, len(want)-n, len(got), "header length for %d bytes", n)
	}
}

// TestClientWriterStopsAfterClose: once the library's close frame went
// out, a data frame would break RFC 6455; writeMessage refuses it, and a
// broken stream refuses everything.
func TestClientWriterStopsAfterClose(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { defer close(done); _, _ = io.Copy(&got, b) }()
	w := &clientWriter{sock: a}
	require.NoError(t, w.writeMessage(opBinary, []byte("hi")))
	closeFrame := testFrame(0x8, 2, false)
	_, err := w.Write(closeFrame[:3]) // split: mu stays held in between
	require.NoError(t, err)
	_, err = w.Write(closeFrame[3:])
	require.NoError(t, err)
	assert.ErrorIs(t, w.writeMessage(opBinary, []byte("late")), errClientStreamClosed)
	a.Close()
	<-done
	assert.Equal(t, append([]byte{0x82, 2, 'h', 'i'}, closeFrame...), got.Bytes(), "nothing after the close frame")

	w2 := &clientWriter{sock: a} // a is closed now
	assert.Error(t, w2.writeMessage(opText, []byte("x")))
	_, err = w2.Write([]byte{0x8a, 0})
	assert.Error(t, err, "a broken stream takes no more frames")
}

// ownFramesBridge serves RFC 6455 clients with the relay to target and
// hands each connection's adapter to conns and its result to results.
func ownFramesBridge(t *testing.T, target string) (url string, conns chan *wsConn, results chan relayResult) {
	t.Helper()
	conns, results = make(chan *wsConn, 4), make(chan relayResult, 4)
	h := &Handler{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc, err := h.acceptClient(w, r)
		if err != nil {
			return
		}
		conns <- cc.(*wsConn)
		tc, err := net.Dial("tcp", target)
		if err != nil {
			cc.closeWith(websocket.StatusInternalError, "dial")
			return
		}
		rl := &relay{client: cc, target: tc, bufSize: DefaultBufferSize}
		results <- rl.run()
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), conns, results
}

// TestOwnFramesBulkWithControlFrames streams bulk data through the relay to
// an echo while both sides ping: the bridge's data frames and the
// library's control frames share the client's socket, and
// the client (coder/websocket, which fails on any malformed frame) must
// get every byte back in order.
func TestOwnFramesBulkWithControlFrames(t *testing.T) {
	t.Parallel()
	url, conns, results := ownFramesBridge(t, echoTarget(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{SubprotocolBinary}})
	require.NoError(t, err)
	defer c.CloseNow()
	c.SetReadLimit(-1)
	wc := <-conns
	require.NotNil(t, wc.out, "binary mode on a TCP socket writes its own frames")

	const total = 8 << 20
	data := make([]byte, total)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(3)
	go func() { // the client's data, in messages of 256 KiB
		defer wg.Done()
		for off := 0; off < total; off += 256 << 10 {
			if err := c.Write(ctx, websocket.MessageBinary, data[off:off+256<<10]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // the bridge's pings, answered by the client's reader
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				_ = wc.ping(5 * time.Second)
			}
		}
	}()
	pings := make(chan error, 1)
	pingCtx, stopPings := context.WithCancel(ctx)
	go func() { // the client's pings: the bridge's reader answers with pongs
		defer wg.Done()
		for {
			select {
			case <-stop:
				pings <- nil
				return
			case <-time.After(time.Millisecond):
				// A ping in flight when the reads below end gets no
				// pong read: stopPings ends it.
				if err := c.Ping(pingCtx); err != nil && pingCtx.Err() == nil {
					pings <- err
					return
				}
			}
		}
	}()
	h := sha256.New()
	got := 0
	maxMsg := 0
	var readErr error
	for got < total {
		// Ping needs a reader running: Reader is that reader.
		_, r, err := c.Reader(ctx)
		if err != nil {
			readErr = err
			break
		}
		n, err := io.Copy(h, r)
		if err != nil {
			readErr = err
			break
		}
		got += int(n)
		maxMsg = max(maxMsg, int(n))
	}
	close(stop)
	stopPings()
	wg.Wait()
	require.NoError(t, readErr)
	require.NoError(t, <-pings)
	assert.Equal(t, want, [32]byte(h.Sum(nil)), "echoed bytes")
	assert.LessOrEqual(t, maxMsg, DefaultBufferSize, "no message larger than the relay buffer")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
	res := <-results
	assert.Equal(t, endClient, res.endedBy)
	assert.NoError(t, res.err)
	assert.Equal(t, int64(total), res.toClient)
}

// TestOwnFramesTargetCloseAfterBulk: the target sends a bulk reply and
// closes; the client gets every byte, then 1000 "target closed", with
// the close frame after the last (possibly spliced) data frame.
func TestOwnFramesTargetCloseAfterBulk(t *testing.T) {
	t.Parallel()
	const total = 3<<20 + 12345
	data := make([]byte, total)
	_, _ = rand.Read(data)
	target := serveTarget(t, func(c net.Conn) { _, _ = c.Write(data) })
	url, conns, results := ownFramesBridge(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{SubprotocolBinary}})
	require.NoError(t, err)
	defer c.CloseNow()
	c.SetReadLimit(-1)
	<-conns
	var got bytes.Buffer
	for {
		_, r, err := c.Reader(ctx)
		if err != nil {
			var ce websocket.CloseError
			require.True(t, errors.As(err, &ce), "want a close frame, got %v", err)
			assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
			assert.Equal(t, "target closed", ce.Reason)
			break
		}
		_, err = io.Copy(&got, r)
		require.NoError(t, err)
	}
	assert.True(t, bytes.Equal(data, got.Bytes()), "got %d of %d bytes, equal: false", got.Len(), total)
	res := <-results
	assert.Equal(t, endTarget, res.endedBy)
	assert.Equal(t, int64(total), res.toClient)
}
