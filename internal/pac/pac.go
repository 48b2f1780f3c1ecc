// Package pac runs proxy auto-config scripts: it fetches them (directly,
// never through a proxy), finds them by WPAD, compiles each once and
// evaluates FindProxyForURL(url, host) under a time and memory limit in
// goja, a pure-Go JavaScript engine. A script sees ECMAScript's built-ins
// and the standard PAC helpers, nothing else: no file, network, timer or
// module access. Fetched scripts and WPAD results are cached per process
// (see Fetcher for the scope).
package pac

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

const (
	// MaxScriptBytes caps a PAC script.
	MaxScriptBytes = 1 << 20
	// FetchTimeout bounds one fetch.
	FetchTimeout = 10 * time.Second
	// CacheTTL is how long a compiled script is used before fetching it
	// again; FailTTL how long a failed fetch or compilation is
	// remembered.
	CacheTTL = 5 * time.Minute
	FailTTL  = time.Minute
	// EvalLimit bounds one evaluation, DNS look-ups of the helpers
	// included.
	EvalLimit = 3 * time.Second
	// pacMaxCallDepth stops runaway recursion with an error.
	pacMaxCallDepth = 10000
	// pacIdleVMs is how many ready interpreters a script keeps.
	pacIdleVMs = 4
)

// errPACTimeout is the cause when an evaluation outlives its limit.
var errPACTimeout = errors.New("PAC evaluation exceeded its time limit")

// errPACMemory is the cause when the heap grows by more than
// pacMaxHeapGrowth during an evaluation.
var errPACMemory = errors.New("PAC evaluation exceeded its memory limit")

// The interpreter has no allocation limit of its own, so a watchdog reads
// the process's heap every pacHeapCheck while a script runs (evaluations
// that end sooner, nearly all, cost nothing) and interrupts the script
// when the heap has grown by more than pacMaxHeapGrowth since it started.
// The figure is process-wide: other goroutines allocating at the same
// time count too, which can only end a script early, never let one grow
// further.
var (
	pacMaxHeapGrowth uint64 = 128 << 20
	pacHeapCheck            = 10 * time.Millisecond
)

// watchPACHeap starts the heap watchdog for one evaluation; interrupt is
// called at most once. The returned stop ends the watch and reports
// whether interrupt was not called.
func watchPACHeap(interrupt func()) (stop func() bool) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	start := heap()
	var (
		mu      sync.Mutex
		done    bool
		fired   bool
		t       *time.Timer
		observe func()
	)
	observe = func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		if heap() > start+pacMaxHeapGrowth {
			fired = true
			interrupt()
			return
		}
		t.Reset(pacHeapCheck)
	}
	mu.Lock()
	t = time.AfterFunc(pacHeapCheck, observe)
	mu.Unlock()
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		done = true
		t.Stop()
		return !fired
	}
}

// Script is a compiled PAC script with a pool of interpreters that have
// run its top level.
type Script struct {
	name string
	prog *goja.Program

	mu   sync.Mutex
	idle []*pacVM
}

// pacVM is one interpreter for one script. state points to the current
// evaluation's context and environment, read by the helpers.
type pacVM struct {
	rt    *goja.Runtime
	find  goja.Callable
	state *pacState
}

type pacState struct {
	ctx context.Context
	env Env
}

// Env is what a script's helpers ask the machine: DNS (dnsResolve,
// isResolvable, isInNet...), its own addresses (myIpAddress), the clock
// (the date and time ranges), and the evaluation's time limit. DefaultEnv
// asks the real machine; tests replace any part.
type Env struct {
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
	MyIPs    func() []net.IP
	Now      func() time.Time
	Limit    time.Duration // bounds one evaluation, helpers' DNS look-ups included
}

// DefaultEnv returns the machine's resolver, addresses and clock, with
// EvalLimit.
func DefaultEnv() Env {
	return Env{LookupIP: defaultLookupIP, MyIPs: defaultMyIPs, Now: time.Now, Limit: EvalLimit}
}

func defaultLookupIP(ctx context.Context, host string) ([]net.IP, error) {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, err
}

// defaultMyIPs returns the addresses this machine would use to reach the
// Internet (found by "connecting" UDP sockets, which sends nothing), then
// its other non-loopback addresses.
func defaultMyIPs() []net.IP {
	var ips []net.IP
	seen := map[string]bool{}
	add := func(ip net.IP) {
		if ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() && !seen[ip.String()] {
			seen[ip.String()] = true
			ips = append(ips, ip)
		}
	}
	for _, probe := range []string{"198.51.100.1:80", "[2001:db8::1]:80"} {
		if c, err := net.Dial("udp", probe); err == nil {
			add(c.LocalAddr().(*net.UDPAddr).IP)
			c.Close()
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				add(n.IP)
			}
		}
	}
	return ips
}

// Compile compiles a script; name is its URL, for error messages.
func Compile(name string, src []byte) (*Script, error) {
	prog, err := goja.Compile(name, string(src), false)
	if err != nil {
		return nil, fmt.Errorf("PAC script does not compile: %w", err)
	}
	return &Script{name: name, prog: prog}, nil
}

// FindProxy evaluates FindProxyForURL for u (FindProxyForURLEx when the
// script defines it) and returns its answer. Like browsers, it passes an
// https or wss URL as scheme://host:port/ only, without path or query, and
// never credentials or a fragment.
func (s *Script) FindProxy(ctx context.Context, env Env, u *url.URL) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, env.Limit)
	defer cancel()
	st := &pacState{ctx: ctx, env: env}
	vm := s.take()
	fresh := vm == nil
	if fresh {
		vm = &pacVM{rt: goja.New(), state: st}
		vm.rt.SetMaxCallStackSize(pacMaxCallDepth)
	}
	vm.state.ctx, vm.state.env = ctx, env
	// Interrupt the script when the limit passes or the caller gives up,
	// or when the heap grows past pacMaxHeapGrowth while it runs.
	stop := context.AfterFunc(ctx, func() { vm.rt.Interrupt(errPACTimeout) })
	stopWatch := watchPACHeap(func() { vm.rt.Interrupt(errPACMemory) })
	reusable := true
	defer func() {
		if !stopWatch() {
			reusable = false
		}
		if !stop() { // the interrupt fired or is firing: discard this VM
			reusable = false
		}
		if reusable {
			s.put(vm)
		}
	}()
	if fresh {
		if err := vm.init(s.prog); err != nil {
			reusable = false
			return "", s.evalError(ctx, err)
		}
	}
	pu := pacURL(u)
	host := u.Hostname()
	v, err := vm.find(goja.Undefined(), vm.rt.ToValue(pu), vm.rt.ToValue(host))
	if err != nil {
		reusable = false
		return "", s.evalError(ctx, err)
	}
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return "", errors.New("FindProxyForURL returned nothing")
	}
	return v.String(), nil
}

// evalError explains an evaluation failure.
func (s *Script) evalError(ctx context.Context, err error) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) && ie.Value() == errPACMemory {
		return errPACMemory
	}
	if errors.As(err, &ie) || ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
		return errPACTimeout
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return fmt.Errorf("PAC script error: call stack deeper than %d: %w", pacMaxCallDepth, err)
	}
	return fmt.Errorf("PAC script error: %w", err)
}

func (s *Script) take() *pacVM {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.idle); n > 0 {
		vm := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return vm
	}
	return nil
}

func (s *Script) put(vm *pacVM) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idle) < pacIdleVMs {
		s.idle = append(s.idle, vm)
	}
}

// pacURL is the URL a script sees: http(s) schemes for ws(s), and for the
// secure ones only scheme://host[:port]/.
func pacURL(u *url.URL) string {
	c := *proxyurl.HTTPScheme(u)
	c.User, c.Fragment, c.RawFragment = nil, "", ""
	if c.Scheme == "https" {
		c.Path, c.RawPath, c.RawQuery, c.ForceQuery = "/", "", "", false
	}
	if c.Path == "" {
		c.Path = "/"
	}
	return c.String()
}

// init installs the helpers and runs the script's top level.
func (vm *pacVM) init(prog *goja.Program) error {
	installPACHelpers(vm.rt, vm.state)
	if _, err := vm.rt.RunProgram(prog); err != nil {
		return err
	}
	for _, name := range []string{"FindProxyForURLEx", "FindProxyForURL"} {
		if fn, ok := goja.AssertFunction(vm.rt.Get(name)); ok {
			vm.find = fn
			return nil
		}
	}
	return errors.New("the script defines no FindProxyForURL function")
}
