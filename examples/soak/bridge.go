//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsproxy/wsproxy/bridge"
)

// The bridge under test runs as a child process of this same binary (so
// that its memory is its own), or in process with -bridge-proc=false. The
// child learns its role from the environment, prints "ready ADDR" once it
// listens and stops when its standard input closes (the parent ended it,
// or died).
const (
	roleEnv     = "WSPROXY_SOAK_ROLE"
	targetEnv   = "WSPROXY_SOAK_TARGET"
	maxConnsEnv = "WSPROXY_SOAK_MAXCONNS"
)

// bridgeStats is what the bridge reports about itself on /stats.
type bridgeStats struct {
	PID        int          `json:"pid"`
	Goroutines int          `json:"goroutines"`
	HeapBytes  uint64       `json:"heap_bytes"` // heap objects, live and not yet swept
	GoMemBytes uint64       `json:"go_mem_bytes"`
	GCCycles   uint64       `json:"gc_cycles"`
	Bridge     bridge.Stats `json:"bridge"`
	Warnings   int64        `json:"warnings"` // log records at Warn level or above
}

// bridgeServer is a bridge.Handler on a loopback port, with /stats beside
// it (/stats?gc=1 collects garbage first).
type bridgeServer struct {
	h        *bridge.Handler
	srv      *http.Server
	ln       net.Listener
	warnings atomic.Int64
	served   chan error
}

// startBridgeServer serves a bridge to target. dial, when not nil,
// replaces the Handler's dialer (the tests use it to damage a stream).
// Log records at Warn level and above are counted, and the first ten go
// to logw.
func startBridgeServer(target string, maxConns int, logw io.Writer, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*bridgeServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &bridgeServer{ln: ln, served: make(chan error, 1)}
	b.h = &bridge.Handler{
		Resolver: bridge.FixedTarget{Address: target},
		MaxConns: maxConns,
		Dial:     dial,
		Logger:   slog.New(&countingHandler{inner: slog.NewTextHandler(logw, nil), count: &b.warnings, shown: new(atomic.Int64)}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("gc") == "1" {
			collect()
		}
		_ = json.NewEncoder(w).Encode(b.stats())
	})
	mux.Handle("/", b.h)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { b.served <- b.srv.Serve(ln) }()
	return b, nil
}

func (b *bridgeServer) addr() string { return b.ln.Addr().String() }

var goMetrics = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/gc/cycles/total:gc-cycles"},
}

func (b *bridgeServer) stats() bridgeStats {
	s := make([]metrics.Sample, len(goMetrics))
	copy(s, goMetrics)
	metrics.Read(s)
	return bridgeStats{
		PID:        os.Getpid(),
		Goroutines: runtime.NumGoroutine(),
		HeapBytes:  s[0].Value.Uint64(),
		GoMemBytes: s[1].Value.Uint64(),
		GCCycles:   s[2].Value.Uint64(),
		Bridge:     b.h.Stats(),
		Warnings:   b.warnings.Load(),
	}
}

// stop shuts the server and the Handler down, closing what is still open
// after a few seconds.
func (b *bridgeServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	if herr := b.h.Shutdown(ctx); err == nil {
		err = herr
	}
	if serr := <-b.served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// collect runs the garbage collector twice: what sync.Pools hold (the
// relay's buffers, coder/websocket's bufio) survives one collection in
// the pools' victim cache.
func collect() {
	runtime.GC()
	runtime.GC()
}

// countingHandler counts the records it is given and passes the first
// ten on.
type countingHandler struct {
	inner slog.Handler
	count *atomic.Int64
	shown *atomic.Int64
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.count.Add(1)
	if h.shown.Add(1) <= 10 {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{inner: h.inner.WithAttrs(as), count: h.count, shown: h.shown}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{inner: h.inner.WithGroup(name), count: h.count, shown: h.shown}
}

// runRole is main for the child process; it returns the exit status.
func runRole(role string) int {
	if role != "bridge" {
		fmt.Fprintf(os.Stderr, "soak: unknown role %q\n", role)
		return 2
	}
	maxConns, _ := strconv.Atoi(os.Getenv(maxConnsEnv))
	b, err := startBridgeServer(os.Getenv(targetEnv), maxConns, os.Stderr, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak bridge: %v\n", err)
		return 1
	}
	fmt.Printf("ready %s\n", b.addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	if err := b.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "soak bridge: stop: %v\n", err)
		return 1
	}
	return 0
}

// bridgeRef is the bridge as the soak sees it: where it listens, whose
// memory to read, and how to ask for its stats.
type bridgeRef struct {
	addr   string
	pid    int
	inproc *bridgeServer
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	http   *http.Client
}

func startBridge(cfg config, target string) (*bridgeRef, error) {
	maxConns := cfg.conns + 16
	if !cfg.bridgeProc {
		b, err := startBridgeServer(target, maxConns, os.Stderr, cfg.bridgeDial)
		if err != nil {
			return nil, err
		}
		return &bridgeRef{addr: b.addr(), pid: os.Getpid(), inproc: b}, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=bridge", targetEnv+"="+target, maxConnsEnv+"="+strconv.Itoa(maxConns))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bridge process did not start (%q, %v)", line, err)
	}
	return &bridgeRef{addr: addr, pid: cmd.Process.Pid, cmd: cmd, stdin: stdin,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}, nil
}

// stats asks the bridge for its stats; with gc, after a garbage
// collection, so that the heap figure is the live heap.
func (b *bridgeRef) stats(gc bool) (bridgeStats, error) {
	if b.inproc != nil {
		if gc {
			collect()
		}
		return b.inproc.stats(), nil
	}
	u := "http://" + b.addr + "/stats"
	if gc {
		u += "?gc=1"
	}
	resp, err := b.http.Get(u)
	if err != nil {
		return bridgeStats{}, err
	}
	defer resp.Body.Close()
	var s bridgeStats
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("/stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// stop ends the bridge: in process, a shutdown; a child gets its standard
// input closed, then a kill if it has not exited after ten seconds.
func (b *bridgeRef) stop() error {
	if b.inproc != nil {
		return b.inproc.stop()
	}
	b.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
		return errors.New("bridge process did not exit; killed")
	}
}
