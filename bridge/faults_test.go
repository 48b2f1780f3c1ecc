package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestBridgeFaults is the bridge's fault table: each row drives one way a
// client, a target or the network can misbehave, and checks that it ends
// with a definite outcome (a close code, a dropped connection, a log line
// or a Stats figure saying why), within a bounded time, with bounded
// memory where the fault is about memory, and without leaving a
// connection open (Stats().Open falls to 0; goleak checks goroutines at
// the end of the package).
//
// Rows that measure the heap (or the process's file descriptors) run one
// after another, alone in the process: TestBridgeFaults is not parallel,
// so Go's test runner holds every parallel test until it returns, and its
// parallel rows wait until the sequential ones are done.
func TestBridgeFaults(t *testing.T) {
	for _, f := range []struct {
		name string
		// alone: the row measures process-wide figures (heap, fds) and
		// must not share the process with other tests.
		alone bool
		run   func(t *testing.T)
	}{
		{"binary 100MiB message streams to target", true, faultHugeBinaryMessage},
		{"base64 100MiB text message gets 1009", true, faultHugeBase64Message},
		{"invalid payloads", false, faultInvalidPayloads},
		{"hixie frame that never ends", true, faultEndlessHixieFrame},
		{"ping flood from a reading client", false, faultPingFloodReading},
		{"ping flood from a client that never reads", true, faultPingFloodNotReading},
		{"ping flood from a client that never reads with heartbeat", false, faultPingFloodHeartbeat},
		{"5000 half-open TCP connections", true, faultHalfOpenTCP},
		{"half-open WebSocket connections", false, faultHalfOpenWebSockets},
		{"client stops reading while target streams", true, faultClientStopsReading},
		{"target stops reading while client streams", true, faultTargetStopsReading},
		{"target stops reading with an idle timeout", false, faultTargetStuckIdleTimeout},
		{"target stops reading: heartbeat spares the live client", false, faultTargetStuckHeartbeat},
		{"target vanishes", false, faultTargetVanishes},
		{"client closes while target streams", false, faultClientClosesWhileTargetStreams},
	} {
		t.Run(f.name, func(t *testing.T) {
			if !f.alone {
				t.Parallel()
			}
			f.run(t)
		})
	}
}

// Bounds shared by the rows.
const (
	hugeMessage = 100 << 20 // the 100 MiB messages of rows 1 and 2
	// heapBound is how much the heap in use may grow while a memory fault
	// runs. The bridge's own cost is a few relay buffers (32 KiB each), a
	// base64 message of at most MaxMessageSize and the libraries' small
	// buffers; 8 MiB leaves room for the test's clients and the garbage
	// a GC cycle lets through, and is far below the 100 MiB a buffering
	// bridge would show.
	heapBound = 8 << 20
	// pinnedBuf is the socket buffer size (SO_SNDBUF and SO_RCVBUF) the
	// backpressure rows set on every socket of the path, so that the
	// bytes in flight have a known bound: Linux doubles the value, and
	// a path client–bridge–target has four sockets in each direction.
	// Smaller buffers stall loopback TCP: its 64 KiB segments no longer
	// fit the receive window, and the sender falls back on zero-window
	// probes, seconds apart.
	pinnedBuf = 256 << 10
	// inFlightBound bounds the bytes a blocked path holds: the four
	// sockets' buffers, the relay's buffer, the WebSocket libraries'
	// bufio buffers (4 KiB each) and slack for frame headers.
	inFlightBound = 4*2*pinnedBuf + bridge.DefaultBufferSize + 256<<10
)

// --- Row 1 -------------------------------------------------------------

// faultHugeBinaryMessage: a 100 MiB binary message, sent as one message
// in 1,600 frames of 64 KiB, is streamed to the target as it arrives. The
// target gets every byte; the heap does not grow with the message.
//
// The client writes its frames by hand (rawWS), masked once in advance:
// coder/websocket's Writer would stream just as well, but it masks in
// pure Go, which the race detector slows to a crawl, and the bridge's own
// unmasking of 100 MiB is already most of this row's time under -race.
func faultHugeBinaryMessage(t *testing.T) {
	sink := newSinkTarget(t, 0)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: sink.addr}}
	url, logs := serve(t, h)
	c := dialRaw(t, url, "binary", 0)
	const frame = 64 << 10
	chunk := bytes.Repeat([]byte("0123456789abcdef"), frame/16)
	first := appendMaskedFrame(nil, false, opBinary, chunk)
	middle := appendMaskedFrame(nil, false, opContinuation, chunk)
	last := appendMaskedFrame(nil, true, opContinuation, chunk)

	heap := watchHeap(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	start := time.Now()
	for sent := 0; sent < hugeMessage; sent += frame {
		f := middle
		switch sent {
		case 0:
			f = first
		case hugeMessage - frame:
			f = last
		}
		_, err := c.Write(f)
		require.NoError(t, err, "after %d bytes", sent)
	}
	// The close frame follows the message: once the bridge reads it, it
	// has relayed the whole message, and it shuts the target's write side.
	_, err := c.Write(appendMaskedFrame(nil, true, opClose, closePayload(websocket.StatusNormalClosure, "done")))
	require.NoError(t, err)
	_, got := sink.wait(t, 30*time.Second)
	elapsed := time.Since(start)
	heap.check(heapBound)
	op, p, err := c.readFrame()
	require.NoError(t, err)
	assert.Equal(t, opClose, op, "the bridge answers the close")
	assert.Equal(t, closePayload(websocket.StatusNormalClosure, "done"), p)

	assert.Equal(t, int64(hugeMessage), got, "bytes the target received")
	waitClosed(t, h)
	assert.Equal(t, int64(hugeMessage), h.Stats().BytesIn)
	logs.waitLog(t, fmt.Sprintf("from_client=%d", hugeMessage))
	assert.Contains(t, logs.String(), "ended_by=client close_code=1000 close_reason=done")
	assert.NotContains(t, logs.String(), "err=", "a clean close is logged without an error")
	t.Logf("100 MiB relayed in %v (%.0f MiB/s)", elapsed.Round(time.Millisecond), float64(hugeMessage>>20)/elapsed.Seconds())
}

// --- Row 2 -------------------------------------------------------------

// faultHugeBase64Message: in base64 mode a text message may carry at most
// MaxMessageSize (1 MiB by default) of base64. A 100 MiB text message is
// refused with 1009 once the cap is passed: the bridge reads little more
// than the cap from the socket and the heap stays flat. The bridge
// decodes base64 messages as they stream, so the target may receive the
// decoded start of the message, never more than the cap's worth (3/4 of
// it), and only bytes the client sent.
func faultHugeBase64Message(t *testing.T) {
	sink := newSinkTarget(t, bridge.DefaultMaxMessageSize)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: sink.addr}}
	cl := &countingListener{}
	url, logs := serveOn(t, h, cl)
	c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"base64"}})

	heap := watchHeap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	readErr := readOnce(ctx, c)
	var sent atomic.Int64
	writeErr := make(chan error, 1)
	go func() {
		w, err := c.Writer(ctx, websocket.MessageText)
		if err != nil {
			writeErr <- err
			return
		}
		chunk := bytes.Repeat([]byte("QUJD"), 16<<10) // valid base64, 64 KiB
		for sent.Load() < hugeMessage {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- w.Close()
	}()

	err := <-readErr
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.StatusMessageTooBig, ce.Code)
	assert.Contains(t, ce.Reason, "read limited at 1048577 bytes")
	require.Error(t, <-writeErr, "the client managed to send the whole 100 MiB message")
	heap.check(heapBound)

	head, got := sink.wait(t, 5*time.Second)
	assert.LessOrEqual(t, got, int64(bridge.DefaultMaxMessageSize/4*3), "the target received more than the cap")
	assert.True(t, bytes.Equal(head, bytes.Repeat([]byte("ABC"), len(head)/3+1)[:len(head)]), "the target received other bytes than the message's")
	waitClosed(t, h)
	assert.Equal(t, got, h.Stats().BytesIn)
	// What the bridge read from the client's socket: the handshake, the
	// frame headers and the message up to the cap, within the HTTP
	// server's 4 KiB read buffer and one 64 KiB frame of the cap.
	read := cl.read.Load()
	assert.LessOrEqual(t, read, int64(bridge.DefaultMaxMessageSize+(64<<10)+(4<<10)), "bridge read %d bytes", read)
	logs.waitLog(t, "bridge: connection closed")
	assert.Contains(t, logs.String(), "message too big")
	assert.Contains(t, logs.String(), "ended_by=client")
	t.Logf("client sent %.1f MiB before the bridge refused, bridge read %.2f MiB from the socket, target got %d bytes",
		float64(sent.Load())/(1<<20), float64(read)/(1<<20), got)
}

// --- Row 3 -------------------------------------------------------------

// faultInvalidPayloads: payloads the mode cannot carry end the
// connection with the RFC 6455 code for them. In base64 mode bytes that
// are not base64 get 1007 (invalid UTF-8 included: the bridge checks
// base64, which is stricter; coder/websocket does not check UTF-8); in
// binary mode any text message gets 1003, valid UTF-8 or not. Messages
// before the bad one reach the target in full; of the bad message, at
// most the whole base64 groups before the first bad byte do (the bridge
// decodes as the message streams), never a byte decoded from bad input.
func faultInvalidPayloads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sub      string
		messages []string // text messages; the last one is the fault
		want     string   // what the target must receive
		mayAlso  string   // what it may receive after want
		code     websocket.StatusCode
		reason   string
		log      string
	}{
		{"invalid UTF-8 in base64 mode", "base64", []string{"\xff\xfe"}, "", "",
			websocket.StatusInvalidFramePayloadData, "invalid base64", "client sent invalid base64"},
		{"a group of invalid UTF-8 in base64 mode", "base64", []string{"\xff\xfe\xfd\xfc"}, "", "",
			websocket.StatusInvalidFramePayloadData, "invalid base64", "client sent invalid base64: illegal base64 data at input byte 0"},
		{"good message then invalid UTF-8", "base64", []string{"QUJD", "REVG\xff\xfe\xfd\xfc"}, "ABC", "DEF",
			websocket.StatusInvalidFramePayloadData, "invalid base64", "client sent invalid base64"},
		{"valid UTF-8 that is not base64", "base64", []string{"not base64!"}, "", "",
			websocket.StatusInvalidFramePayloadData, "invalid base64", "client sent invalid base64: illegal base64 data at input byte 3"},
		{"truncated base64", "base64", []string{"QUJDRA"}, "", "ABC",
			websocket.StatusInvalidFramePayloadData, "invalid base64", "client sent invalid base64: message length is not a multiple of 4"},
		{"text message in binary mode", "binary", []string{"hello"}, "", "",
			websocket.StatusUnsupportedData, "text messages need the base64 subprotocol", "client sent a text message in binary mode"},
		{"invalid UTF-8 text message in binary mode", "binary", []string{"\xff\xfe"}, "", "",
			websocket.StatusUnsupportedData, "text messages need the base64 subprotocol", "client sent a text message in binary mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := newSinkTarget(t, 1024)
			h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: sink.addr}}
			url, logs := serve(t, h)
			c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{tc.sub}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, m := range tc.messages {
				require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(m)))
			}
			_, _, err := c.Read(ctx)
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.code, ce.Code)
			assert.Equal(t, tc.reason, ce.Reason)
			head, _ := sink.wait(t, 5*time.Second)
			assert.True(t, strings.HasPrefix(string(head), tc.want) && strings.HasPrefix(tc.want+tc.mayAlso, string(head)),
				"the target received %q, want %q and perhaps part of %q", head, tc.want, tc.mayAlso)
			waitClosed(t, h)
			logs.waitLog(t, "bridge: connection closed")
			assert.Contains(t, logs.String(), tc.log)
			assert.Contains(t, logs.String(), "ended_by=client")
			assert.Equal(t, int64(len(head)), h.Stats().BytesIn)
		})
	}
}

// --- Row 4 -------------------------------------------------------------

// faultEndlessHixieFrame: a Hixie-76 client opens a frame (0x00) and
// sends base64 forever without the closing 0xFF. The decoder streams
// the frame to the target as it arrives (with fixed memory) until the
// frame passes the cap (MaxMessageSize), then the bridge drops the
// client and logs why. The target receives at most the cap.
func faultEndlessHixieFrame(t *testing.T) {
	sink := newSinkTarget(t, 0)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: sink.addr}}
	cl := &countingListener{}
	url, logs := serveOn(t, h, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc, err := hixietest.Dial(ctx, hostOf(url), hixietest.Options{Protocol: "base64"})
	require.NoError(t, err)
	defer hc.Close()

	heap := watchHeap(t)
	require.NoError(t, hc.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = hc.Write([]byte{0x00})
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte("QUJD"), 16<<10) // 64 KiB of base64
	sent := 0
	for sent < hugeMessage {
		n, werr := hc.Write(chunk)
		sent += n
		if err = werr; err != nil {
			break
		}
	}
	require.Error(t, err, "the bridge took %d bytes of an endless frame", sent)
	require.False(t, isTimeout(err), "write: %v", err)
	// The bridge dropped the connection: no close handshake (the frame
	// never ended), just the end of the stream.
	_, err = io.Copy(io.Discard, hc)
	require.False(t, isTimeout(err), "read after the drop: %v", err)
	heap.check(heapBound)

	_, got := sink.wait(t, 5*time.Second)
	assert.LessOrEqual(t, got, int64(bridge.DefaultMaxMessageSize))
	waitClosed(t, h)
	logs.waitLog(t, "legacy frame too large: the frame at offset 0 exceeds 1048576 bytes")
	assert.Contains(t, logs.String(), "protocol=hixie-76")
	assert.Contains(t, logs.String(), "ended_by=client")
	read := cl.read.Load()
	// The cap in base64 (4/3 of it), the handshake and the decoder's and
	// the HTTP server's read buffers.
	assert.LessOrEqual(t, read, int64(bridge.DefaultMaxMessageSize*4/3+(64<<10)))
	t.Logf("client sent %.1f MiB, bridge read %.2f MiB, target got %d bytes", float64(sent)/(1<<20), float64(read)/(1<<20), got)
}

// --- Row 5 -------------------------------------------------------------

// pingFlood is the most pings a flooding client sends.
const pingFlood = 100_000

// faultPingFloodReading: a client sends pings as fast as the bridge takes
// them (up to 100,000, for at most 3 s), with a data message after every
// 1,000, and reads everything. coder/websocket answers each ping in the
// goroutine that reads the client, so the flood slows the client's own
// data, nothing else: every ping gets its pong, every data byte its echo,
// a message sent right after the flood comes back once the backlog is
// through, and the connection closes normally. Pinned socket buffers and full-size pings
// (125 bytes) keep the backlog (what the client wrote but the bridge has
// not read yet) to about 8,000 pings, so the flood runs at the bridge's
// pace rather than piling up in the kernel.
func faultPingFloodReading(t *testing.T) {
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(t)}}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dialRaw(t, url, "binary", pinnedBuf)
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))

	const perBatch, dataLen = 1000, 1000
	ping := bytes.Repeat([]byte("flood"), 25) // 125 bytes, the most a control frame carries
	var batch []byte
	for i := 0; i < perBatch; i++ {
		batch = appendMaskedFrame(batch, true, opPing, ping)
	}
	var pongs atomic.Int64
	var mu sync.Mutex
	var echoed []byte
	readDone := make(chan error, 1)
	go func() {
		for {
			op, p, err := c.readFrame()
			if err != nil {
				readDone <- err
				return
			}
			switch op {
			case opPong:
				if !bytes.Equal(p, ping) {
					readDone <- fmt.Errorf("pong %q", p)
					return
				}
				pongs.Add(1)
			case opBinary:
				mu.Lock()
				echoed = append(echoed, p...)
				mu.Unlock()
			case opClose:
				readDone <- nil
				return
			}
		}
	}()
	var sent []byte
	pings := 0
	start := time.Now()
	for pings < pingFlood && time.Since(start) < 3*time.Second {
		_, err := c.Write(batch)
		require.NoError(t, err)
		pings += perBatch
		data := randomBytes(t, dataLen)
		_, err = c.Write(appendMaskedFrame(nil, true, opBinary, data))
		require.NoError(t, err)
		sent = append(sent, data...)
	}
	flood := time.Since(start)
	// The bridge is still responsive: a message sent now comes back
	// once the short backlog is through.
	last := randomBytes(t, dataLen)
	sent = append(sent, last...)
	echoStart := time.Now()
	_, err := c.Write(appendMaskedFrame(nil, true, opBinary, last))
	require.NoError(t, err)
	echoedAll := func() bool { mu.Lock(); defer mu.Unlock(); return len(echoed) == len(sent) }
	require.Eventually(t, echoedAll, 10*time.Second, time.Millisecond, "echo stalled: %v", h.Stats())
	echoTook := time.Since(echoStart)

	_, err = c.Write(appendMaskedFrame(nil, true, opClose, closePayload(websocket.StatusNormalClosure, "bye")))
	require.NoError(t, err)
	require.NoError(t, <-readDone)
	assert.Equal(t, int64(pings), pongs.Load(), "pongs")
	assert.True(t, bytes.Equal(sent, echoed), "echoed bytes differ")
	waitClosed(t, h)
	logs.waitLog(t, "close_code=1000 close_reason=bye")
	t.Logf("%d pings in %v (%.0f/s), all answered; data echoed throughout; round trip after the flood %v",
		pings, flood.Round(time.Millisecond), float64(pings)/flood.Seconds(), echoTook.Round(time.Millisecond))
}

// faultPingFloodNotReading: a client floods pings (125-byte payloads) and
// never reads. Pongs are written by the goroutine that reads, one at a
// time, so they cannot pile up in memory: once the client's socket is
// full the pong write blocks, the bridge stops reading, the client's
// writes block too, and coder/websocket's 5 s timeout on control frames
// ends the connection. The heap stays flat all along. (Pinned socket
// buffers make the sockets fill after about 8,000 pongs.)
func faultPingFloodNotReading(t *testing.T) {
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(t)}}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dialRaw(t, url, "binary", pinnedBuf)
	heap := watchHeap(t)
	start := time.Now()
	sent, flooding := floodPings(c)
	require.Eventually(t, func() bool { return h.Stats().Open == 0 }, 15*time.Second, 5*time.Millisecond,
		"the bridge still serves the flooding client after 15 s")
	took := time.Since(start)
	heap.check(heapBound)
	requireDropped(t, c)
	require.Error(t, <-flooding)
	// coder/websocket gives up on the ping whose pong it cannot write
	// (or, once the sockets are stuck, whose payload does not come).
	logs.waitLog(t, "failed to handle control frame opPing")
	assert.Contains(t, logs.String(), "context deadline exceeded")
	assert.Contains(t, logs.String(), "ended_by=client")
	t.Logf("the bridge took %d pings, then dropped the client after %v", sent.Load(), took.Round(time.Millisecond))
}

// faultPingFloodHeartbeat: the same flood with the heartbeat on. The
// client never answers the heartbeat's ping (once the sockets are full the
// ping cannot even be written), so the bridge drops it as a dead peer
// after HeartbeatInterval and HeartbeatTimeout (half a second), before
// coder/websocket's 5 s timeout on the stuck pong would.
func faultPingFloodHeartbeat(t *testing.T) {
	h := &bridge.Handler{HeartbeatInterval: 200 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}
	url, logs := echoBridge(t, h)
	c := dialRaw(t, url, "binary", 0)
	_, flooding := floodPings(c)
	waitClosed(t, h)
	requireDropped(t, c)
	require.Error(t, <-flooding)
	logs.waitLog(t, "heartbeat: dead peer")
	assert.Contains(t, logs.String(), "ended_by=bridge")
}

// floodPings writes 125-byte pings to c, 1,000 per write, on a goroutine,
// until a write fails (or a million were sent); it never reads. The
// error goes to the channel.
func floodPings(c *rawWS) (*atomic.Int64, <-chan error) {
	var batch []byte
	for i := 0; i < 1000; i++ {
		batch = appendMaskedFrame(batch, true, opPing, bytes.Repeat([]byte{'p'}, 125))
	}
	var sent atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for sent.Load() < 10*pingFlood {
			if _, err := c.Write(batch); err != nil {
				errc <- err
				return
			}
			sent.Add(1000)
		}
		errc <- nil
	}()
	return &sent, errc
}

// requireDropped checks that the bridge has ended c's connection: reading
// what reached the client ends with EOF or a reset, not the deadline.
// Then it closes c, which also ends a write blocked on it.
func requireDropped(t *testing.T, c *rawWS) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, c.br)
	c.Close()
	require.False(t, isTimeout(err), "the client's connection is still open: %v", err)
}

// --- Row 6 -------------------------------------------------------------

// faultHalfOpenTCP: 5,000 TCP connections that never send a byte, on the
// sniffing Listener with a 300 ms peek timeout and the default
// MaxPending (1024). A WebSocket client arriving in the middle of them
// is served once the silent ones ahead of it have timed out; every
// silent one is closed by the server with a log line, and the process's
// file descriptors come back.
func faultHalfOpenTCP(t *testing.T) {
	const silent = 5000
	const peek = 300 * time.Millisecond
	fdsBefore := openFDs()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := bridge.Listen("tcp", "127.0.0.1:0", &bridge.ListenerOptions{PeekTimeout: peek, Logger: logger})
	require.NoError(t, err)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(t)}, Logger: logger}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(l) }()
	stopServer := sync.OnceFunc(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		<-served
	})
	t.Cleanup(stopServer)
	addr := l.Addr().String()

	conns := make([]net.Conn, silent)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	dialRange := func(from, to int) {
		var wg sync.WaitGroup
		var failed atomic.Int64
		var firstErr atomic.Value
		const workers = 8
		for w := range workers {
			wg.Go(func() {
				for i := from + w; i < to; i += workers {
					// 10 s: with 1024 connections in classification and
					// the rest queued in the kernel (4096 at most), a SYN
					// may be dropped and retried after 1 s, then 3 s.
					c, err := net.DialTimeout("tcp", addr, 10*time.Second)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					conns[i] = c
				}
			})
		}
		wg.Wait()
		require.Zero(t, failed.Load(), "dials failed, the first with %v", firstErr.Load())
	}
	start := time.Now()
	dialRange(0, silent/2)
	// A legitimate client in the middle of the flood.
	legit := make(chan error, 1)
	legitStart := time.Now()
	var legitTook time.Duration
	go func() {
		err := wsEcho(t, "ws://"+addr+"/", plainClient)
		legitTook = time.Since(legitStart)
		legit <- err
	}()
	dialRange(silent/2, silent)
	dialed := time.Since(start)
	require.NoError(t, <-legit, "the legitimate client was not served during the flood")

	// Every silent connection is closed by the server: reads end with
	// EOF (or a reset), never with the client's own deadline. With 1024
	// classified at a time, the last ones wait about five peek timeouts.
	deadline := time.Now().Add(10 * time.Second)
	eof, reset := 0, 0
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(deadline))
		n, err := c.Read(make([]byte, 1))
		require.Zero(t, n)
		switch {
		case errors.Is(err, io.EOF):
			eof++
		case isTimeout(err):
			t.Fatalf("silent connection %d still open %v after the flood began", i, time.Since(start))
		default:
			reset++
		}
	}
	allClosed := time.Since(start)
	assert.Equal(t, silent, eof+reset)
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "connection closed before its first bytes") == silent
	}, 5*time.Second, 10*time.Millisecond)
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	stopServer()
	waitClosed(t, h)
	assert.Equal(t, uint64(1), h.Stats().Total)
	if fdsBefore >= 0 {
		// Closing is asynchronous in places (the echo target's side):
		// wait for the count to come back.
		var now int
		ok := waitFor(func() bool { now = openFDs(); return now <= fdsBefore+4 })
		assert.True(t, ok, "fds: %d before the flood, %d after", fdsBefore, now)
	}
	t.Logf("%d silent connections dialed in %v; legitimate echo took %v; all closed by the server after %v (%d EOF, %d reset); fds %d before, %d after",
		silent, dialed.Round(time.Millisecond), legitTook.Round(time.Millisecond), allClosed.Round(time.Millisecond), eof, reset, fdsBefore, openFDs())
}

// faultHalfOpenWebSockets: clients that finish the handshake and then go
// silent (never answer a ping, never close) are dropped by the heartbeat
// as dead peers; the bridge's count of open connections returns to 0.
func faultHalfOpenWebSockets(t *testing.T) {
	const n = 50
	h := &bridge.Handler{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond}
	url, logs := echoBridge(t, h)
	conns := make([]*rawWS, n)
	for i := range conns {
		conns[i] = dialRaw(t, url, "", 0)
	}
	require.Eventually(t, func() bool { return h.Stats().Total == n }, 5*time.Second, 5*time.Millisecond)
	waitClosed(t, h)
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "heartbeat: dead peer") == n },
		5*time.Second, 10*time.Millisecond, "log:\n%s", logs)
	// Each client saw pings, then the end of the connection (no close
	// frame: a dead peer would not answer it).
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		pings := 0
		for {
			op, _, err := c.readFrame()
			if err != nil {
				require.False(t, isTimeout(err), "client %d: connection still open", i)
				break
			}
			require.Equal(t, opPing, op, "client %d", i)
			pings++
		}
		require.Positive(t, pings, "client %d got no ping", i)
	}
}

// --- Row 7 -------------------------------------------------------------

// faultClientStopsReading: the target writes without end and the client
// never reads. Backpressure holds: the bridge's write to the client
// blocks, it stops reading the target, and the target's writes block
// after filling the socket buffers. Every socket on the path has a pinned
// buffer size so the bytes in flight have a known bound. Closing the
// client ends the connection and the target sees it.
func faultClientStopsReading(t *testing.T) {
	var written atomic.Int64
	targetErr := make(chan error, 1)
	target := tcpTarget(t, pinnedBuf, func(c net.Conn) {
		chunk := make([]byte, 32<<10)
		for {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				targetErr <- err
				return
			}
		}
	})
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Dial: pinnedDial(pinnedBuf)}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dial(t, url, &websocket.DialOptions{HTTPClient: pinnedHTTPClient(pinnedBuf)})

	heap := watchHeap(t)
	atTwo := waitStalled(t, &written)
	heap.check(heapBound)
	assert.LessOrEqual(t, atTwo, int64(inFlightBound), "the target wrote %d bytes to a client that reads nothing", atTwo)
	select {
	case err := <-targetErr:
		t.Fatalf("target write failed while the client was still there: %v", err)
	default:
	}

	closed := time.Now()
	c.CloseNow()
	select {
	case err := <-targetErr:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the target is still writing 5 s after the client closed")
	}
	waitClosed(t, h)
	logs.waitLog(t, "bridge: connection closed")
	assert.Contains(t, logs.String(), "ended_by=client")
	t.Logf("target wrote %d KiB in 2 s (bound %d KiB); everything ended %v after the client closed",
		atTwo>>10, inFlightBound>>10, time.Since(closed).Round(time.Millisecond))
}

// --- Row 8 -------------------------------------------------------------

// faultTargetStopsReading: the client streams without end and the target
// never reads. The bridge's write to the target blocks, it stops reading
// the client, and the client's writes block after filling the socket
// buffers; the heap stays flat. When the target goes away the bridge's
// write fails and the client gets 1011.
func faultTargetStopsReading(t *testing.T) {
	target, targetConns := stuckTarget(t)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Dial: pinnedDial(pinnedBuf)}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dial(t, url, &websocket.DialOptions{HTTPClient: pinnedHTTPClient(pinnedBuf)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	readErr := readOnce(ctx, c)
	written, writeErr := streamBinary(ctx, c)
	tc := firstConn(t, targetConns)

	heap := watchHeap(t)
	atTwo := waitStalled(t, written)
	heap.check(heapBound)
	assert.LessOrEqual(t, atTwo, int64(inFlightBound), "the client wrote %d bytes to a target that reads nothing", atTwo)
	assert.LessOrEqual(t, h.Stats().BytesIn, int64(inFlightBound))

	// The target goes away (with unread bytes: a reset).
	gone := time.Now()
	tc.Close()
	requireClose(t, <-readErr, websocket.StatusInternalError, "target connection failed")
	require.Error(t, <-writeErr)
	waitClosed(t, h)
	logs.waitLog(t, "bridge: connection closed")
	// Both directions see the reset; either may report it first ("write
	// to target: ..." or the read's error).
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "ended_by=target close_code=1011")
	t.Logf("client wrote %d KiB in 2 s (bound %d KiB); everything ended %v after the target went away",
		atTwo>>10, inFlightBound>>10, time.Since(gone).Round(time.Millisecond))
}

// waitStalled waits until the writer's count stops moving (two samples
// 250 ms apart agree; under load the buffers on the path may take a while
// to fill) and returns it. A count still moving after 10 s fails the test:
// backpressure did not hold.
func waitStalled(t *testing.T, written *atomic.Int64) int64 {
	t.Helper()
	last := int64(-1)
	require.Eventually(t, func() bool {
		n := written.Load()
		stalled := n == last
		last = n
		return stalled
	}, 10*time.Second, 250*time.Millisecond, "the writes never stopped progressing: %d bytes", written.Load())
	return last
}

// faultTargetStuckHeartbeat: a live client whose target stopped reading
// is not taken for a dead peer: its pongs wait behind the bytes the relay
// cannot deliver, which says nothing about the client.
func faultTargetStuckHeartbeat(t *testing.T) {
	target, targetConns := stuckTarget(t)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Dial: pinnedDial(pinnedBuf),
		// A timeout of a second: a pong that a loaded CI machine delays
		// before the relay blocks must not count (seen once with 200 ms).
		HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: time.Second}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dial(t, url, &websocket.DialOptions{HTTPClient: pinnedHTTPClient(pinnedBuf)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	readErr := readOnce(ctx, c) // answers pings as long as frames reach it
	_, writeErr := streamBinary(ctx, c)
	tc := firstConn(t, targetConns)
	time.Sleep(3500 * time.Millisecond) // several unanswered pings with the target stuck
	assert.Equal(t, int64(1), h.Stats().Open, "the live client was dropped")
	assert.NotContains(t, logs.String(), "dead peer")
	tc.Close()
	var ce websocket.CloseError
	require.ErrorAs(t, <-readErr, &ce)
	assert.Equal(t, websocket.StatusInternalError, ce.Code)
	require.Error(t, <-writeErr)
	waitClosed(t, h)
}

// faultTargetStuckIdleTimeout: with IdleTimeout set, a connection whose
// target stopped reading ends after IdleTimeout (no payload moves either
// way), with 1001 "idle timeout" to the client. This is also what ends it
// when the client has gone meanwhile: while the relay is blocked writing
// to the target nothing reads the client, so its close alone is not
// noticed (see the report on the fault table).
func faultTargetStuckIdleTimeout(t *testing.T) {
	const idle = 500 * time.Millisecond
	target, targetConns := stuckTarget(t)
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Dial: pinnedDial(pinnedBuf), IdleTimeout: idle}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dial(t, url, &websocket.DialOptions{HTTPClient: pinnedHTTPClient(pinnedBuf)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	readErr := readOnce(ctx, c)
	_, writeErr := streamBinary(ctx, c)
	tc := firstConn(t, targetConns)
	var ce websocket.CloseError
	require.ErrorAs(t, <-readErr, &ce)
	took := time.Since(start)
	assert.Equal(t, websocket.StatusGoingAway, ce.Code)
	assert.Equal(t, "idle timeout", ce.Reason)
	assert.GreaterOrEqual(t, took, idle)
	assert.Less(t, took, idle+5*time.Second)
	require.Error(t, <-writeErr)
	waitClosed(t, h)
	logs.waitLog(t, "ended_by=bridge close_code=1001 close_reason=\"idle timeout\"")
	require.NoError(t, tc.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := io.Copy(io.Discard, tc)
	assert.False(t, isTimeout(err), "the target's connection is still open: %v", err)
}

// --- Row 9 -------------------------------------------------------------

// faultTargetVanishes: the target ends in the middle of a stream.
func faultTargetVanishes(t *testing.T) {
	t.Run("closes cleanly", func(t *testing.T) {
		t.Parallel()
		// The target reads what the client sends first, then streams
		// 3 MiB and closes: the client gets every byte, then 1000.
		fromClient := randomBytes(t, 1<<20)
		toClient := randomBytes(t, 3<<20)
		target := tcpTarget(t, 0, func(c net.Conn) {
			if _, err := io.ReadFull(c, make([]byte, len(fromClient))); err != nil {
				return
			}
			_, _ = c.Write(toClient)
		})
		h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}}
		url, logs := serve(t, h)
		c := dial(t, url, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, fromClient))
		got := readN(t, c, len(toClient), false)
		require.True(t, bytes.Equal(toClient, got), "the client got %d bytes, or different ones", len(got))
		_, _, err := c.Read(ctx)
		requireClose(t, err, websocket.StatusNormalClosure, "target closed")
		waitClosed(t, h)
		logs.waitLog(t, "ended_by=target close_code=1000 close_reason=\"target closed\"")
		assert.Equal(t, int64(len(toClient)), h.Stats().BytesOut)
	})
	t.Run("resets", func(t *testing.T) {
		t.Parallel()
		// Once the relay runs (the client's first byte arrived), the
		// target streams 1 MiB, then resets (SO_LINGER 0). A reset
		// before that would hit the bridge's dial instead (1011 "target
		// unreachable", the next row).
		target := tcpTarget(t, 0, func(c net.Conn) {
			if _, err := c.Read(make([]byte, 1)); err != nil {
				return
			}
			_, _ = c.Write(make([]byte, 1<<20))
			_ = c.(*net.TCPConn).SetLinger(0)
		})
		h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}}
		url, logs := serve(t, h)
		c := dial(t, url, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("go")))
		var err error
		for err == nil {
			_, _, err = c.Read(ctx)
		}
		requireClose(t, err, websocket.StatusInternalError, "target connection failed")
		waitClosed(t, h)
		logs.waitLog(t, "bridge: connection closed")
		assert.Contains(t, logs.String(), "level=WARN")
		assert.Contains(t, logs.String(), "ended_by=target close_code=1011")
		assert.Contains(t, logs.String(), "connection reset by peer")
	})
	t.Run("dial refused", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: addr}}
		url, logs := serve(t, h)
		c := dial(t, url, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err = c.Read(ctx)
		requireClose(t, err, websocket.StatusInternalError, "target unreachable")
		waitClosed(t, h)
		logs.waitLog(t, "bridge: target dial failed")
		assert.Contains(t, logs.String(), "connection refused")
		assert.Contains(t, logs.String(), "close_code=1011")
		assert.Equal(t, uint64(1), h.Stats().Failed)
	})
}

// --- Row 10 ------------------------------------------------------------

// faultClientClosesWhileTargetStreams: the client sends 512 KiB and
// closes cleanly while the target keeps sending and has not read yet.
// Every byte the client sent reaches the target, then the end of the
// stream. The bridge must not close its socket to the target at once:
// the target's unread bytes in it make the close a reset, which throws
// away the client's bytes still queued for the target (the target then
// sees a truncated stream, even a clean-looking EOF).
func faultClientClosesWhileTargetStreams(t *testing.T) {
	data := randomBytes(t, 512<<10) // fits in the sockets on the way
	type result struct {
		got []byte
		err error
	}
	received := make(chan result, 1)
	clientClosed := make(chan struct{})
	target := tcpTarget(t, pinnedBuf, func(c net.Conn) {
		stopWriting := make(chan struct{})
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(stopWriting)
		wg.Go(func() { // stream to the client until the end
			chunk := make([]byte, 16<<10)
			for {
				select {
				case <-stopWriting:
					return
				default:
				}
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		})
		// Read only once the client has closed.
		select {
		case <-clientClosed:
		case <-time.After(10 * time.Second):
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				received <- result{got, err}
				return
			}
		}
	})
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: target}, Dial: pinnedDial(pinnedBuf)}
	url, logs := serveOn(t, h, &countingListener{pin: pinnedBuf})
	c := dial(t, url, &websocket.DialOptions{HTTPClient: pinnedHTTPClient(pinnedBuf)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, data))
	// The client does not read: meanwhile the target's bytes fill the
	// way to the client, then pile up unread in the bridge's socket.
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
	close(clientClosed)
	var r result
	select {
	case r = <-received:
	case <-time.After(15 * time.Second):
		t.Fatal("the target's connection never ended")
	}
	assert.ErrorIs(t, r.err, io.EOF, "the target's connection ended with %v, not EOF", r.err)
	assert.Equal(t, len(data), len(r.got), "bytes the target received")
	assert.True(t, bytes.Equal(data, r.got), "the target received other bytes")
	waitClosed(t, h)
	logs.waitLog(t, "ended_by=client close_code=1000 close_reason=bye")
	assert.Contains(t, logs.String(), fmt.Sprintf("from_client=%d", len(data)))
	assert.NotContains(t, logs.String(), "err=", "a clean close is logged without an error")
}

// --- Helpers -----------------------------------------------------------

// waitClosed waits until h has no open connection.
func waitClosed(t *testing.T, h *bridge.Handler) {
	t.Helper()
	require.Eventually(t, func() bool { return h.Stats().Open == 0 }, 10*time.Second, 5*time.Millisecond,
		"connections still open: %v", h.Stats())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// heapWatch samples the heap in use while a memory fault runs. It lowers
// GOGC meanwhile so that garbage is collected before it could hide or
// mimic a leak: the peak then tracks live memory closely.
type heapWatch struct {
	t        *testing.T
	base     uint64
	peak     atomic.Uint64
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	oldGCPct int
}

func watchHeap(t *testing.T) *heapWatch {
	w := &heapWatch{t: t, stop: make(chan struct{}), done: make(chan struct{})}
	w.oldGCPct = debug.SetGCPercent(25)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.base = ms.HeapInuse
	w.peak.Store(ms.HeapInuse)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > w.peak.Load() {
					w.peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *heapWatch) end() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		debug.SetGCPercent(w.oldGCPct)
	})
}

// check stops sampling, logs the figures and fails when the peak grew
// more than limit over the start.
func (w *heapWatch) check(limit uint64) {
	w.t.Helper()
	w.end()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak := w.peak.Load()
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	w.t.Logf("heap in use: %.1f MiB before, peak %.1f MiB (+%.1f MiB), %.1f MiB after GC",
		mib(w.base), mib(peak), mib(peak-w.base), mib(ms.HeapInuse))
	assert.LessOrEqual(w.t, peak-w.base, limit, "heap grew by %.1f MiB", mib(peak-w.base))
}

// openFDs counts the process's open file descriptors, or returns -1
// where /proc/self/fd does not exist.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// sinkTarget accepts one connection, reads and discards what it gets,
// and reports what it received once the connection ends: how many bytes,
// and the first ones (up to the keep given to newSinkTarget, in a buffer
// allocated in advance so that it does not count in heap measurements).
type sinkTarget struct {
	addr string
	done chan sinkResult
}

type sinkResult struct {
	head []byte
	n    int64
}

func newSinkTarget(t *testing.T, keep int) *sinkTarget {
	s := &sinkTarget{done: make(chan sinkResult, 1)}
	head := make([]byte, keep)
	s.addr = tcpTarget(t, 0, func(c net.Conn) {
		n, _ := io.ReadFull(c, head)
		m, _ := io.Copy(io.Discard, c)
		select {
		case s.done <- sinkResult{head[:n], int64(n) + m}:
		default:
			t.Errorf("sink: more than one connection")
		}
	})
	return s
}

// wait waits for the end of the target's connection and returns the
// first bytes it received and their total count.
func (s *sinkTarget) wait(t *testing.T, within time.Duration) ([]byte, int64) {
	t.Helper()
	select {
	case r := <-s.done:
		return r.head, r.n
	case <-time.After(within):
		t.Fatalf("the target's connection did not end within %v", within)
		return nil, 0
	}
}

// tcpTarget runs serve for each connection to a new TCP listener until
// the test ends, then closes the connections still open and waits for
// every serve to return. pin > 0 sets the accepted sockets' buffers.
func tcpTarget(t *testing.T, pin int, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			pinBuffers(c, pin)
			wg.Go(func() {
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		cancel()
		wg.Wait()
	})
	return l.Addr().String()
}

// stuckTarget accepts connections (with pinned buffers) and neither reads
// nor writes them: each is handed to the test, which may close it, and
// they are closed when the test ends.
func stuckTarget(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	conns := make(chan net.Conn, 1)
	release := make(chan struct{})
	addr := tcpTarget(t, pinnedBuf, func(c net.Conn) {
		select {
		case conns <- c:
			<-release
		case <-release:
		}
	})
	// Registered after tcpTarget's cleanup, so it runs before it: that
	// cleanup waits for serve to return.
	t.Cleanup(func() { close(release) })
	return addr, conns
}

// firstConn returns the first connection a target accepted.
func firstConn(t *testing.T, conns <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the bridge never dialed the target")
		return nil
	}
}

// readOnce reads one message from c on a goroutine and returns the error
// it ends with (a close, for the rows that never expect data).
func readOnce(ctx context.Context, c *websocket.Conn) <-chan error {
	errc := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); errc <- err }()
	return errc
}

// streamBinary writes one endless binary message to c, 32 KiB at a time,
// on a goroutine, counting the bytes each write accepted, until a write
// fails; the error goes to the channel.
func streamBinary(ctx context.Context, c *websocket.Conn) (*atomic.Int64, <-chan error) {
	var written atomic.Int64
	errc := make(chan error, 1)
	go func() {
		w, err := c.Writer(ctx, websocket.MessageBinary)
		if err != nil {
			errc <- err
			return
		}
		chunk := make([]byte, 32<<10)
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	return &written, errc
}

// pinBuffers sets c's send and receive buffers to size (when positive),
// which also turns off their automatic tuning.
func pinBuffers(c net.Conn, size int) {
	if tc, ok := c.(*net.TCPConn); ok && size > 0 {
		_ = tc.SetReadBuffer(size)
		_ = tc.SetWriteBuffer(size)
	}
}

// pinnedDial is a Handler.Dial whose connections have pinned buffers.
func pinnedDial(size int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			pinBuffers(c, size)
		}
		return c, err
	}
}

// pinnedHTTPClient is an HTTP client for websocket.Dial whose connections
// have pinned buffers.
func pinnedHTTPClient(size int) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: pinnedDial(size), DisableKeepAlives: true}}
}

// countingListener counts the bytes the server reads from its accepted
// connections (the bridge reads the client through them, also after the
// hijack) and pins their buffers when pin > 0.
type countingListener struct {
	net.Listener
	pin  int
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pinBuffers(c, l.pin)
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// serveOn is serve on a countingListener over 127.0.0.1:0.
func serveOn(t *testing.T, h *bridge.Handler, l *countingListener) (string, *logBuffer) {
	t.Helper()
	return serveWith(t, h, func(srv *httptest.Server) {
		l.Listener = srv.Listener
		srv.Listener = l
	})
}

// rawWS is a hand-made RFC 6455 client on a TCP connection, for faults
// a well-behaved client library does not commit (floods, silence).
type rawWS struct {
	net.Conn
	br *bufio.Reader
}

// RFC 6455 opcodes.
const (
	opContinuation byte = 0x0
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// dialRaw opens a WebSocket to url by hand, offering subprotocol when not
// empty, and checks the 101 answer. pin > 0 pins the socket's buffers.
func dialRaw(t *testing.T, url, subprotocol string, pin int) *rawWS {
	t.Helper()
	addr := hostOf(url)
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	pinBuffers(nc, pin)
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	k := base64.StdEncoding.EncodeToString(key)
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + k + "\r\n"
	if subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	require.NoError(t, nc.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(nc, req+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	require.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), resp.Header.Get("Sec-WebSocket-Accept"))
	require.NoError(t, nc.SetDeadline(time.Time{}))
	return &rawWS{Conn: nc, br: br}
}

// rawMask is the masking key of every frame rawWS sends.
var rawMask = [4]byte{0x5a, 0xc3, 0x0f, 0x96}

// appendMaskedFrame appends one client frame, masked as RFC 6455 requires
// of clients.
func appendMaskedFrame(dst []byte, fin bool, op byte, payload []byte) []byte {
	if fin {
		op |= 0x80
	}
	dst = append(dst, op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, rawMask[:]...)
	for i, b := range payload {
		dst = append(dst, b^rawMask[i%4])
	}
	return dst
}

func closePayload(code websocket.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// readFrame reads one server frame (final, unmasked, as the bridge sends
// them).
func (c *rawWS) readFrame() (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0]&0x80 == 0 || hdr[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("unexpected frame header %x", hdr)
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0f, payload, nil
}

// requireClose checks that err is the close frame the client got, with
// this code and reason.
func requireClose(t *testing.T, err error, code websocket.StatusCode, reason string) {
	t.Helper()
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, code, ce.Code)
	assert.Equal(t, reason, ce.Reason)
}
