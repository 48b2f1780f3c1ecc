package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// The PROXY protocol between HAProxy and the bridges, as in production:
// HAProxy sends a v2 header, the bridges require it from loopback only.
var (
	proxyProtocolToBridges  = "send-proxy-v2"
	bridgeProxyProtocolArgs = []string{"--proxy-protocol", "--trusted-proxy", "127.0.0.1/32"}
)

// rollingClients is how many clients stream through HAProxy; client i
// connects from its own loopback address, clientIP(i).
const rollingClients = 50

// clientIP is client i's source address, 127.0.0.(2+i): all of 127/8 is
// loopback on Linux, so each client is told apart at the far end (the
// bridges' logs, the target) by its address alone.
func clientIP(i int) net.IP { return net.IPv4(127, 0, 0, byte(2+i)) }

// streamStats is one streaming client's account; counters are atomic
// because the test reads them while the client runs.
type streamStats struct {
	connects   atomic.Int64 // WebSocket connections opened
	moves      atomic.Int64 // closes with 1001 "going away", each followed by a reconnect
	afterMove  atomic.Int64 // echo rounds verified since the last move
	verified   atomic.Int64 // echoed bytes compared equal to what was sent
	corrupt    atomic.Int64 // echoed bytes that differed, or more than was sent
	unexpected atomic.Int64 // connections that ended otherwise (not 1001, not the test's end)
	lastErr    atomic.Value // string

	mu     sync.Mutex
	locals []string // each opened connection's local address, "127.0.0.2:port", in order
}

func (st *streamStats) opened(local string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.locals = append(st.locals, local)
}

func (st *streamStats) addrs() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.locals)
}

// dialFrom returns DialOptions whose TCP connections leave from ip; the
// local address of the last connection dialed is in *local. Close the
// transport's idle connections when done.
func dialFrom(ip net.IP, local *atomic.Value) (*websocket.DialOptions, *http.Transport) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			local.Store(c.LocalAddr().String())
		}
		return c, err
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}, tr
}

// dialWithProxyHeader returns DialOptions whose connections start with a
// PROXY protocol header (version 1 or 2) naming src as the client, as a
// load balancer in front of the bridge would send.
func dialWithProxyHeader(version byte, src *net.TCPAddr) (*websocket.DialOptions, *http.Transport) {
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if _, err := proxyproto.HeaderProxyFromAddrs(version, src, c.RemoteAddr()).WriteTo(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}, tr
}

// streamClient connects to url from ip and, until ctx ends, sends chunks
// of seeded random bytes and checks that each comes back unchanged; on
// 1001 it reconnects (through the load balancer, to whichever bridge it
// picks) and goes on.
func streamClient(ctx context.Context, url string, id int, ip net.IP, st *streamStats) {
	rng := rand.New(rand.NewPCG(uint64(id), 14))
	var local atomic.Value
	opts, tr := dialFrom(ip, &local)
	defer tr.CloseIdleConnections()
	for ctx.Err() == nil {
		c, _, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			st.lastErr.Store("dial: " + err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		st.opened(local.Load().(string))
		st.connects.Add(1)
		c.SetReadLimit(-1)
		err = streamOn(ctx, c, rng, st)
		c.CloseNow()
		switch {
		case ctx.Err() != nil:
			return
		case websocket.CloseStatus(err) == websocket.StatusGoingAway:
			st.moves.Add(1)
			st.afterMove.Store(0)
		default:
			st.unexpected.Add(1)
			st.lastErr.Store(err.Error())
		}
	}
}

func streamOn(ctx context.Context, c *websocket.Conn, rng *rand.Rand, st *streamStats) error {
	for {
		msg := make([]byte, 512+rng.IntN(3584))
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return err
		}
		for got := 0; got < len(msg); {
			_, m, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if len(m) > len(msg)-got || !bytes.Equal(m, msg[got:got+len(m)]) {
				st.corrupt.Add(int64(len(m)))
				return fmt.Errorf("echo differs at byte %d", got)
			}
			got += len(m)
			st.verified.Add(int64(len(m)))
		}
		st.afterMove.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// finalTotal reads the total from a bridge's last log line (JSON):
// "wsbridge: stopped" with stats="open=0 total=N ...".
func finalTotal(t *testing.T, output string) int {
	t.Helper()
	for line := range strings.Lines(output) {
		var rec struct {
			Msg   string `json:"msg"`
			Stats string `json:"stats"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "wsbridge: stopped" {
			continue
		}
		m := regexp.MustCompile(`\btotal=(\d+)`).FindStringSubmatch(rec.Stats)
		require.NotNil(t, m, rec.Stats)
		n, _ := strconv.Atoi(m[1])
		return n
	}
	t.Fatalf("no \"wsbridge: stopped\" JSON line in:\n%s", output)
	return 0
}

// loggedRemotes returns the "remote" of every "bridge: connection closed"
// line in the bridges' JSON logs: the client address each finished
// connection was logged with.
func loggedRemotes(outputs ...string) map[string]bool {
	remotes := map[string]bool{}
	for _, output := range outputs {
		for line := range strings.Lines(output) {
			var rec struct {
				Msg    string `json:"msg"`
				Remote string `json:"remote"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "bridge: connection closed" {
				remotes[rec.Remote] = true
			}
		}
	}
	return remotes
}

// printedClients returns the client addresses a HAProxyAcceptProxy target
// printed ("client=IP:PORT", read from the PROXY header it was sent).
func printedClients(output string) map[string]bool {
	clients := map[string]bool{}
	for _, m := range regexp.MustCompile(`client=(\S+)`).FindAllStringSubmatch(output, -1) {
		clients[m[1]] = true
	}
	return clients
}

// echoVia opens a WebSocket to url with opts (nil for the defaults),
// echoes one message and closes.
func echoVia(t *testing.T, url string, opts *websocket.DialOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, opts)
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("probe")))
	_, p, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, "probe", string(p))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}

// TestRollingRestartBehindHAProxy is issue 14's end-to-end proof. Two
// wsbridge processes behind a real HAProxy (TCP mode, send-proxy-v2 to
// bridges that require the PROXY header from it, HTTP checks on /readyz)
// share a real Redis token store and send a PROXY header of their own
// (--target-proxy-protocol v2) to a real PROXY-protocol receiver (HAProxy,
// accept-proxy) in front of the echo target. 50 clients, each from its own
// loopback address, stream checked data through HAProxy; each connection
// appears with the client's own address and port in the bridge's log and
// at the target. SIGTERM to one bridge (with --drain-delay): its /readyz
// is 503 at once while it still serves (a direct client with a PROXY
// header of its own is served and logged with the header's address),
// HAProxy marks it DOWN and sends new connections to the other, its
// clients get 1001 after the grace period and reconnect through HAProxy
// to the other bridge, no echoed byte differs, and the drained process
// exits 0.
func TestRollingRestartBehindHAProxy(t *testing.T) {
	t.Parallel()
	redis := peertest.Redis(t, "")
	target, targetProxy := peertest.HAProxyAcceptProxy(t, peertest.EchoServer(t))
	peertest.RedisText(t, redis, "", "SET", "rolling", target)
	common := append([]string{"--token-plugin", "TokenRedis", "--token-source", redis,
		"--allow-target", "127.0.0.1/32:*", "--log-format", "json", "--target-proxy-protocol", "v2"}, bridgeProxyProtocolArgs...)
	const drainDelay = 3 * time.Second
	a := startBridgeProc(t, "wsbridge-a", append([]string{"--drain-delay", strconv.Itoa(int(drainDelay / time.Second))}, common...)...)
	b := startBridgeProc(t, "wsbridge-b", common...)
	lb := peertest.StartHAProxy(t, peertest.HAProxyOptions{Servers: []peertest.HAProxyServer{
		{Name: "a", Addr: a.addr, CheckPort: portOf(t, a.metrics), Options: proxyProtocolToBridges},
		{Name: "b", Addr: b.addr, CheckPort: portOf(t, b.metrics), Options: proxyProtocolToBridges},
	}})
	require.Eventually(t, func() bool { return lb.ServerStatus(t, "a") == "UP" && lb.ServerStatus(t, "b") == "UP" },
		10*time.Second, 20*time.Millisecond, "HAProxy sees both bridges")
	url := "ws://" + lb.Addr + "/?token=rolling"

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stats := make([]streamStats, rollingClients)
	for i := range stats {
		wg.Go(func() { streamClient(ctx, url, i, clientIP(i), &stats[i]) })
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	open := func(p *bridgeProc) float64 { return p.metric(t, "wsbridge_connections_open") }
	require.Eventually(t, func() bool { return open(a)+open(b) == rollingClients }, 15*time.Second, 20*time.Millisecond,
		"all clients connected through HAProxy")
	onA := int(open(a))
	require.Positive(t, onA, "HAProxy balanced no client to bridge a")
	totalA := int(a.metric(t, "wsbridge_connections_total", `result="ok"`) + a.metric(t, "wsbridge_connections_total", `result="failed"`))

	sigterm := time.Now()
	require.NoError(t, a.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return a.status(t, "/readyz") == 503 }, 5*time.Second, 5*time.Millisecond,
		"/readyz is 503 once draining starts")
	notReady := time.Since(sigterm)
	assert.Equal(t, 200, a.status(t, "/healthz"))
	// Still accepting and serving while the load balancer notices: a
	// client that skips HAProxy but sends a v1 header of its own (from
	// 127.0.0.1, a trusted proxy) is served, and the header's address is
	// the one in the log and at the target.
	direct := &net.TCPAddr{IP: net.ParseIP("192.0.2.77"), Port: 4242}
	opts, tr := dialWithProxyHeader(1, direct)
	echoVia(t, "ws://"+a.addr+"/?token=rolling", opts)
	tr.CloseIdleConnections()
	require.Eventually(t, func() bool { return strings.HasPrefix(lb.ServerStatus(t, "a"), "DOWN") }, 5*time.Second, 10*time.Millisecond,
		"HAProxy marks the draining bridge DOWN")
	down := time.Since(sigterm)
	okB := b.metric(t, "wsbridge_connections_total", `result="ok"`)
	const probes = 10
	for range probes {
		echoVia(t, url, nil)
	}
	assert.Equal(t, okB+probes, b.metric(t, "wsbridge_connections_total", `result="ok"`), "new connections after DOWN go to bridge b")

	exited, err := a.Wait(drainDelay + shutdownGrace + 10*time.Second)
	require.True(t, exited, "the drained bridge did not exit")
	require.NoError(t, err, "the drained bridge exits 0")
	drained := time.Since(sigterm)
	assert.Equal(t, totalA+1, finalTotal(t, a.Output()),
		"bridge a got no connection through HAProxy after SIGTERM (only the direct one)")
	onALog := loggedRemotes(a.Output())
	assert.True(t, onALog[direct.String()], "bridge a logs the direct client with its PROXY header's address %v", direct)
	targetProxy.WaitPrinted(t, "client="+direct.String(), 5*time.Second)

	// Every client of a got 1001 and is back, on b, streaming checked data.
	require.Eventually(t, func() bool {
		if open(b) != rollingClients {
			return false
		}
		for i := range stats {
			if stats[i].moves.Load() > 0 && stats[i].afterMove.Load() < 3 {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond, "clients of a reconnected to b")
	stop()
	wg.Wait()

	// Every connection was logged, by the bridge it reached, with the
	// client's own address and port, and the target read the same from
	// the bridge's PROXY header. The clients that started on a (by their
	// logged addresses) are exactly those that moved.
	var conns []string
	for i := range stats {
		conns = append(conns, stats[i].addrs()...)
	}
	var onBLog, atTarget map[string]bool
	require.Eventually(t, func() bool {
		onBLog, atTarget = loggedRemotes(b.Output()), printedClients(targetProxy.Output())
		for _, c := range conns {
			if !onALog[c] && !onBLog[c] || !atTarget[c] {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "each client's address in a bridge's log and at the target")
	var moved, moves, connects, corrupt, unexpected, verified int64
	for i := range stats {
		st := &stats[i]
		addrs := st.addrs()
		require.NotEmpty(t, addrs, "client %d never connected", i)
		if st.moves.Load() > 0 {
			moved++
		}
		assert.Equal(t, onALog[addrs[0]], st.moves.Load() > 0, "client %d (%s) started on a: moved once", i, addrs[0])
		for _, c := range addrs {
			host, _, _ := net.SplitHostPort(c)
			assert.Equal(t, clientIP(i).String(), host, "client %d's connection left from its own address", i)
		}
		for _, c := range addrs[1:] {
			assert.True(t, onBLog[c], "client %d reconnected (%s) through HAProxy to b", i, c)
		}
		moves += st.moves.Load()
		connects += st.connects.Load()
		corrupt += st.corrupt.Load()
		unexpected += st.unexpected.Load()
		verified += st.verified.Load()
		if st.unexpected.Load() > 0 || st.corrupt.Load() > 0 {
			t.Errorf("client %d: %d unexpected ends, %d corrupt bytes, last error %v", i, st.unexpected.Load(), st.corrupt.Load(), st.lastErr.Load())
		}
	}
	assert.Equal(t, int64(onA), moved, "every client of a moved, once")
	assert.Equal(t, moved, moves)
	assert.Equal(t, int64(rollingClients)+moves, connects)
	assert.Len(t, conns, int(connects))
	assert.Zero(t, corrupt)
	assert.Zero(t, unexpected)
	t.Logf("rolling restart: %d clients (127.0.0.2-%v) through HAProxy, %d on the drained bridge moved (1001, reconnected to the other); "+
		"%d connections logged with the client's own address by the bridges and read from the PROXY header by the target; "+
		"%d bytes echoed and verified, 0 corrupted; /readyz 503 after %v, HAProxy DOWN after %v, drained process exited 0 after %v "+
		"(--drain-delay %v + grace %v)", rollingClients, clientIP(rollingClients-1), moved, len(conns), verified,
		notReady.Round(time.Millisecond), down.Round(time.Millisecond), drained.Round(time.Millisecond), drainDelay, shutdownGrace)
}
