//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// contestant is one server under test and the flavor its clients speak.
type contestant struct {
	label  string
	flavor flavor
	addr   string
	pid    int
}

// setup is every server a run needs; stop ends them.
type setup struct {
	echo, echoIdle, splice, copyRelay, bridge, bridgeIdle, websockify *child
	baseline, baselineIdle                                            *child // -baseline's bridge
	extra                                                             []*child
	tmp                                                               string
	tinyproxyAddr                                                     string
	tinyproxyErr                                                      error
}

func (s *setup) stop() {
	for _, c := range append([]*child{s.echo, s.echoIdle, s.splice, s.copyRelay, s.bridge, s.bridgeIdle, s.websockify, s.baseline, s.baselineIdle}, s.extra...) {
		if c != nil {
			c.stop()
		}
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

// tinyproxy starts tinyproxy once and returns its address.
func (s *setup) tinyproxy() (string, error) {
	if s.tinyproxyAddr == "" && s.tinyproxyErr == nil {
		s.tinyproxyAddr, s.tinyproxyErr = startTinyproxy(s)
	}
	return s.tinyproxyAddr, s.tinyproxyErr
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServers starts the echoes, the two reference relays, the bridge
// (one for the relay scenarios, one in front of the buffered echo for the
// many-connections scenario) and websockify.
func startServers(cfg config, s *setup, rep *report) error {
	var err error
	if s.tmp, err = os.MkdirTemp("", "wsproxy-bench-"); err != nil {
		return err
	}
	_ = os.Chmod(s.tmp, 0o755)
	if s.echo, err = startChild("TCP echo", "echo", ""); err != nil {
		return err
	}
	if s.echoIdle, err = startChild("buffered TCP echo", "echo-idle", ""); err != nil {
		return err
	}
	if s.splice, err = startChild("splice relay", "relay-splice", s.echo.addr); err != nil {
		return err
	}
	if s.copyRelay, err = startChild("copy relay", "relay-copy", s.echo.addr); err != nil {
		return err
	}
	if s.bridge, err = startChild("wsproxy bridge", "bridge", s.echo.addr); err != nil {
		return err
	}
	if s.bridgeIdle, err = startChild("wsproxy bridge (many connections)", "bridge", s.echoIdle.addr); err != nil {
		return err
	}
	if cfg.baseline != "" {
		if s.baseline, err = startChildFrom(cfg.baseline, "baseline bridge", "bridge", s.echo.addr); err != nil {
			return err
		}
		if s.baselineIdle, err = startChildFrom(cfg.baseline, "baseline bridge (many connections)", "bridge", s.echoIdle.addr); err != nil {
			return err
		}
	}
	if path, err := exec.LookPath("websockify"); err == nil {
		addr := freeAddr()
		if s.websockify, err = startProgram("websockify", addr, path, addr, s.echo.addr); err != nil {
			rep.missing = append(rep.missing, "websockify: "+err.Error())
		}
	} else {
		rep.missing = append(rep.missing, "websockify: not installed (apt-get install websockify); its rows are left out")
	}
	return nil
}

// Row labels, also used to find the references of the ratio columns.
const (
	labelEcho   = "TCP echo alone, no relay"
	labelSplice = "Go TCP relay, splice (io.Copy)"
	labelCopy   = "Go TCP relay, 64 KiB user-space copy"
	labelBinary = "wsproxy bridge, binary"
	labelWSF    = "websockify 0.10, binary"
	// labelBaseline names the bridge of -baseline.
	labelBaseline = "baseline bridge (-baseline)"
)

func runAll(cfg config) (*report, error) {
	rep := &report{started: time.Now(), command: "go run ./examples/bench " + strings.Join(os.Args[1:], " ")}
	rep.loadBefore = loadAverage()
	s := &setup{}
	defer s.stop()
	if err := startServers(cfg, s, rep); err != nil {
		return nil, err
	}

	echo := contestant{labelEcho, rawTCP, s.echo.addr, s.echo.cmd.Process.Pid}
	splice := contestant{labelSplice, rawTCP, s.splice.addr, s.splice.cmd.Process.Pid}
	cp := contestant{labelCopy, rawTCP, s.copyRelay.addr, s.copyRelay.cmd.Process.Pid}
	bin := contestant{labelBinary, wsBinary, s.bridge.addr, s.bridge.cmd.Process.Pid}
	b64 := contestant{"wsproxy bridge, base64", wsBase64, s.bridge.addr, s.bridge.cmd.Process.Pid}
	hix := contestant{"wsproxy bridge, Hixie-76", hixieFlavor, s.bridge.addr, s.bridge.cmd.Process.Pid}
	var base []contestant // -baseline's bridge, binary and base64
	if s.baseline != nil {
		base = []contestant{
			{labelBaseline + ", binary", wsBinary, s.baseline.addr, s.baseline.cmd.Process.Pid},
			{labelBaseline + ", base64", wsBase64, s.baseline.addr, s.baseline.cmd.Process.Pid},
		}
	}
	var wsf *contestant
	if s.websockify != nil {
		wsf = &contestant{labelWSF, wsBinary, s.websockify.addr, s.websockify.cmd.Process.Pid}
	}

	if cfg.only["throughput"] {
		list := []contestant{echo, splice, cp, bin, b64}
		if hixieFlavor.dial != nil {
			list = append(list, hix)
		}
		list = append(list, base...)
		if wsf != nil {
			list = append(list, *wsf)
		}
		t, bars, err := throughputTable(cfg, cfg.pick(list))
		if err != nil {
			return nil, err
		}
		rep.tables = append(rep.tables, t)
		rep.bars = bars
	}
	if cfg.only["small"] {
		list := []contestant{splice, cp, bin}
		if len(base) > 0 {
			list = append(list, base[0])
		}
		if wsf != nil {
			list = append(list, *wsf)
		}
		t, err := smallTable(cfg, cfg.pick(list))
		if err != nil {
			return nil, err
		}
		rep.tables = append(rep.tables, t)
	}
	if cfg.only["conns"] {
		idle := []contestant{{labelBinary, coderBinary, s.bridgeIdle.addr, s.bridgeIdle.cmd.Process.Pid}}
		if s.baselineIdle != nil {
			idle = append(idle, contestant{labelBaseline + ", binary", coderBinary, s.baselineIdle.addr, s.baselineIdle.cmd.Process.Pid})
		}
		t, err := connsTable(cfg, idle)
		if err != nil {
			return nil, err
		}
		rep.tables = append(rep.tables, t)
	}
	if cfg.only["tunnel"] {
		t, missing, err := tunnelTable(cfg, s)
		if err != nil {
			return nil, err
		}
		rep.tables = append(rep.tables, t)
		rep.missing = append(rep.missing, missing...)
	}
	if cfg.only["dial"] {
		t, missing, err := dialTable(cfg, s)
		if err != nil {
			return nil, err
		}
		rep.tables = append(rep.tables, t)
		rep.missing = append(rep.missing, missing...)
	}
	rep.loadAfter = loadAverage()
	return rep, nil
}

// pick keeps the contestants -rows selects.
func (cfg config) pick(list []contestant) []contestant {
	if cfg.rows == nil {
		return list
	}
	var out []contestant
	for _, c := range list {
		if cfg.rows.MatchString(c.label) {
			out = append(out, c)
		}
	}
	return out
}

// refMedian returns the median of the row labelled label, or 0.
func refMedian(list []contestant, results [][]float64, label string) float64 {
	for i, c := range list {
		if c.label == label {
			return median(results[i])
		}
	}
	return 0
}

func throughputTable(cfg config, list []contestant) (table, []bar, error) {
	results := make([][]float64, len(list))
	cpu := make([][]float64, len(list)) // CPU seconds of the server per GB of payload
	for r := 0; r < cfg.rounds; r++ {
		for i, c := range list {
			before, cerr := cpuSeconds(c.pid)
			v, err := throughput(c.flavor, c.addr, cfg.size, cfg.duration)
			if err != nil {
				return table{}, nil, fmt.Errorf("throughput %s: %w", c.label, err)
			}
			results[i] = append(results[i], v)
			// websockify serves each connection in a forked process,
			// whose CPU its parent's /proc entry does not show.
			if after, err := cpuSeconds(c.pid); err == nil && cerr == nil && v > 0 && c.label != labelWSF {
				gb := v * cfg.duration.Seconds() / 1e3 // about: the run lasts the duration and a little more
				cpu[i] = append(cpu[i], (after-before)/gb)
			}
		}
	}
	spliceMed, copyMed := refMedian(list, results, labelSplice), refMedian(list, results, labelCopy)
	binMed, wsMed := refMedian(list, results, labelBinary), refMedian(list, results, labelWSF)
	t := table{
		title: "Bulk throughput",
		note: fmt.Sprintf("One connection streams %d KiB messages to a TCP echo through the relay for %v while reading the echo back; MB/s of payload, each byte crossing the relay twice. "+
			"The echo splices (io.Copy on its TCP connection); its own row, measured without a relay, shows it is never the bottleneck. "+
			"The two Go relays are the references: splicing (no byte enters user space: the kernel's limit) and copying through a user-space buffer (the limit for a relay that must frame or unmask bytes). "+
			"Every WebSocket contestant gets the same lean client (see examples/bench/leanws.go). "+
			"CPU is the server process's user and system time per GB of payload (each GB crossing it twice), from /proc: less sensitive than MB/s to other load on the machine (not shown for websockify, which serves each connection in a forked process). Median of %d rounds.", cfg.size>>10, cfg.duration, cfg.rounds),
		header: []string{"relay", "MB/s", "× splice relay", "× copy relay", "× websockify", "× bridge binary", "server CPU s/GB"},
	}
	var bars []bar
	for i, c := range list {
		m := median(results[i])
		cpuCell := "–"
		if len(cpu[i]) > 0 {
			cpuCell = fmt.Sprintf("%.2f", median(cpu[i]))
		}
		t.rows = append(t.rows, []string{c.label, fmt.Sprintf("%.0f", m), ratio(m, spliceMed), ratio(m, copyMed), ratio(m, wsMed), ratio(m, binMed), cpuCell})
		bars = append(bars, bar{c.label, m})
	}
	return t, bars, nil
}

func smallTable(cfg config, list []contestant) (table, error) {
	t := table{
		title:  "Small messages",
		note:   fmt.Sprintf("64-byte messages, each waiting for its echo (client → relay → TCP echo → client), for %v. Round trips per second over all connections; latency percentiles over all round trips; the server's CPU time per round trip, from /proc (not for websockify). Median of %d rounds.", cfg.duration, cfg.rounds),
		header: []string{"relay", "connections", "round trips/s", "p50", "p99", "rate × copy relay", "rate × websockify", "p99 ÷ websockify", "server CPU µs per round trip"},
	}
	for _, conns := range []int{1, 100} {
		rates := make([][]float64, len(list))
		cpu := make([][]float64, len(list)) // server CPU µs per round trip
		p50s := make([][]time.Duration, len(list))
		p99s := make([][]time.Duration, len(list))
		for r := 0; r < cfg.rounds; r++ {
			for i, c := range list {
				before, cerr := cpuSeconds(c.pid)
				res, err := roundTrips(c.flavor, c.addr, conns, cfg.duration)
				if err != nil {
					return t, fmt.Errorf("small messages %s: %w", c.label, err)
				}
				if after, err := cpuSeconds(c.pid); err == nil && cerr == nil && res.perSec > 0 && c.label != labelWSF {
					cpu[i] = append(cpu[i], (after-before)/(res.perSec*cfg.duration.Seconds())*1e6)
				}
				rates[i] = append(rates[i], res.perSec)
				p50s[i] = append(p50s[i], res.p50)
				p99s[i] = append(p99s[i], res.p99)
			}
		}
		copyRate, wsRate, wsP99 := refMedian(list, rates, labelCopy), refMedian(list, rates, labelWSF), 0.0
		for i, c := range list {
			if c.label == labelWSF {
				wsP99 = float64(medianDur(p99s[i]))
			}
		}
		for i, c := range list {
			rate, p99 := median(rates[i]), medianDur(p99s[i])
			cpuCell := "–"
			if len(cpu[i]) > 0 {
				cpuCell = fmt.Sprintf("%.1f", median(cpu[i]))
			}
			t.rows = append(t.rows, []string{c.label, strconv.Itoa(conns), fmt.Sprintf("%.0f", rate),
				fmtDur(medianDur(p50s[i])), fmtDur(p99), ratio(rate, copyRate), ratio(rate, wsRate), ratio(float64(p99), wsP99), cpuCell})
		}
	}
	return t, nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func connsTable(cfg config, list []contestant) (table, error) {
	t := table{
		title: "Many connections",
		note: fmt.Sprintf("%d idle WebSocket connections bridged to TCP (client, bridge and echo targets on this machine; coder/websocket clients; a buffered echo, since a splicing one holds a pipe pair per connection); bridge RSS growth per connection as read from /proc, then again once each connection has echoed one 64-byte message and gone idle. Then %d connections each stream %d KiB of random data at once and check the echo by SHA-256.",
			cfg.idle, cfg.streams, cfg.perStream>>10),
		header: []string{"relay", "idle opened", "time to open all", "bridge RSS per idle connection", "… after one message each", "streaming connections", "aggregate MB/s", "bytes verified"},
	}
	for _, c := range list {
		res, err := manyConnections(c.flavor, c.addr, c.pid, cfg.idle, cfg.streams, cfg.perStream)
		if err != nil {
			return table{}, fmt.Errorf("many connections, %s: %w", c.label, err)
		}
		t.rows = append(t.rows, []string{c.label, fmt.Sprintf("%d / %d", res.opened, cfg.idle), res.openTime.Round(time.Millisecond).String(),
			fmt.Sprintf("%.1f KiB", res.rssPerConn), fmt.Sprintf("%.1f KiB", res.rssAfterMsg), strconv.Itoa(res.streamConns), fmt.Sprintf("%.0f", res.streamMBps), strconv.FormatInt(res.verified, 10)})
	}
	return t, nil
}

// dialTable times opening a WebSocket directly and through real proxies.
func dialTable(cfg config, s *setup) (table, []string, error) {
	t := table{
		title:  "Dialing",
		note:   "Time to an open WebSocket (median of 20 dials per round), and the TCP connections and CONNECT requests one dial needs. Target: the bridge (ws) or an in-process TLS WebSocket server (wss).",
		header: []string{"client, route", "median time", "TCP connections", "CONNECT requests"},
	}
	var missing []string
	wsTarget := "ws://" + s.bridge.addr + "/"
	cert, err := peertest.GenerateCert(s.tmp)
	if err != nil {
		return t, nil, err
	}
	wssAddr, stopTLS, err := startTLSWebSocket(cert.TLS)
	if err != nil {
		return t, nil, err
	}
	defer stopTLS()
	wssTarget := "wss://" + wssAddr + "/"
	tlsConf := &tls.Config{RootCAs: cert.Pool}

	type route struct {
		label string
		dial  func() (dialStats, error)
	}
	var routes []route
	routes = append(routes, route{"wsproxy, direct (ws)", func() (dialStats, error) {
		return wsproxyDial(&wsproxy.Dialer{}, wsTarget, nil)
	}})
	if tp, err := s.tinyproxy(); err == nil {
		pu := &url.URL{Scheme: "http", Host: tp, User: url.UserPassword("alice", "s3cret")}
		routes = append(routes,
			route{"wsproxy, tinyproxy Basic (ws)", func() (dialStats, error) { return wsproxyDial(&wsproxy.Dialer{}, wsTarget, pu) }},
			route{"gorilla, tinyproxy Basic (ws)", func() (dialStats, error) { return gorillaDial(wsTarget, pu, nil) }},
			route{"wsproxy, tinyproxy Basic (wss)", func() (dialStats, error) {
				return wsproxyDial(&wsproxy.Dialer{TLSClientConfig: tlsConf}, wssTarget, pu)
			}},
			route{"gorilla, tinyproxy Basic (wss)", func() (dialStats, error) { return gorillaDial(wssTarget, pu, tlsConf) }},
		)
	} else {
		missing = append(missing, "tinyproxy: "+err.Error())
	}
	if sq, err := startSquidDigest(s); err == nil {
		pu := &url.URL{Scheme: "http", Host: sq, User: url.UserPassword("alice", "s3cret")}
		var shared *wsproxy.Dialer
		routes = append(routes,
			route{"wsproxy, squid Digest, first dial (ws)", func() (dialStats, error) {
				shared = &wsproxy.Dialer{} // a new Dialer knows no nonce yet
				return wsproxyDial(shared, wsTarget, pu)
			}},
			route{"wsproxy, squid Digest, later dial (ws)", func() (dialStats, error) {
				if shared == nil {
					shared = &wsproxy.Dialer{}
					if _, err := wsproxyDial(shared, wsTarget, pu); err != nil {
						return dialStats{}, err
					}
				}
				return wsproxyDial(shared, wsTarget, pu)
			}},
		)
	} else {
		missing = append(missing, "squid: "+err.Error())
	}
	missing = append(missing, "gorilla/websocket through squid Digest: not possible, gorilla sends only preemptive Basic")

	const perRound = 20
	times := make([][]time.Duration, len(routes))
	last := make([]dialStats, len(routes))
	failed := make([]error, len(routes))
	for r := 0; r < cfg.rounds; r++ {
		for i, rt := range routes {
			for n := 0; n < perRound && failed[i] == nil; n++ {
				st, err := rt.dial()
				if err != nil {
					failed[i] = err
					break
				}
				times[i] = append(times[i], st.took)
				last[i] = st
			}
		}
	}
	for i, rt := range routes {
		if failed[i] != nil {
			t.rows = append(t.rows, []string{rt.label, "failed: " + failed[i].Error(), "", ""})
			continue
		}
		t.rows = append(t.rows, []string{rt.label, fmtDur(medianDur(times[i])), strconv.FormatInt(last[i].tcpConns, 10), strconv.FormatInt(last[i].connects, 10)})
	}
	return t, missing, nil
}

func startTinyproxy(s *setup) (string, error) {
	path, err := exec.LookPath("tinyproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/tinyproxy"); serr != nil {
			return "", fmt.Errorf("not installed (apt-get install tinyproxy)")
		}
		path = "/usr/bin/tinyproxy"
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	conf := s.tmp + "/tinyproxy.conf"
	if err := os.WriteFile(conf, []byte(peertest.TinyproxyConfig(p, "alice", "s3cret")), 0o644); err != nil {
		return "", err
	}
	c, err := startProgram("tinyproxy", addr, path, "-d", "-c", conf)
	if err != nil {
		return "", err
	}
	s.extra = append(s.extra, c)
	return addr, nil
}

func startSquidDigest(s *setup) (string, error) {
	path, err := exec.LookPath("squid")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/squid"); serr != nil {
			return "", fmt.Errorf("not installed (apt-get install squid)")
		}
		path = "/usr/sbin/squid"
	}
	dir := s.tmp + "/squid"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	conf, err := peertest.WriteSquidFiles(dir, p, peertest.SquidDigest, "alice", "s3cret")
	if err != nil {
		return "", err
	}
	c, err := startProgram("squid", addr, path, "-N", "-n", "wsbench"+port, "-f", conf)
	if err != nil {
		return "", err
	}
	s.extra = append(s.extra, c)
	return addr, nil
}

// startTLSWebSocket serves a WebSocket echo over TLS in this process, the
// wss:// target of the dialing scenario.
func startTLSWebSocket(cert tls.Certificate) (string, func(), error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
