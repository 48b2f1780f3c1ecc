package wsproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// PAC (proxy auto-config) scripts: fetch, compile once, evaluate
// FindProxyForURL(url, host) under a time limit in goja, a pure-Go
// JavaScript engine. A script sees ECMAScript's built-ins and the standard
// PAC helpers, nothing else: no file, network, timer or module access.

const (
	// pacMaxBytes caps a PAC script.
	pacMaxBytes = 1 << 20
	// pacFetchTimeout bounds one fetch.
	pacFetchTimeout = 10 * time.Second
	// pacCacheTTL is how long a compiled script is used before fetching
	// it again; pacFailTTL how long a failed fetch or compilation is
	// remembered.
	pacCacheTTL = 5 * time.Minute
	pacFailTTL  = time.Minute
	// pacEvalLimit bounds one evaluation, DNS look-ups of the helpers
	// included.
	pacEvalLimit = 3 * time.Second
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

// pacScript is a compiled PAC script with a pool of interpreters that have
// run its top level.
type pacScript struct {
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
	env pacEnv
}

// pacEnv is what the helpers ask the machine: DNS, own addresses, clock.
type pacEnv struct {
	lookupIP func(ctx context.Context, host string) ([]net.IP, error)
	myIPs    func() []net.IP
	now      func() time.Time
	limit    time.Duration
}

// pacEnv returns the environment PAC helpers of d's dials see.
func (d *Dialer) pacEnv() pacEnv {
	e := pacEnv{lookupIP: defaultLookupIP, myIPs: defaultMyIPs, now: time.Now, limit: pacEvalLimit}
	if h := d.hooks; h != nil {
		if h.lookupIP != nil {
			e.lookupIP = h.lookupIP
		}
		if h.myIPs != nil {
			e.myIPs = h.myIPs
		}
		if h.now != nil {
			e.now = h.now
		}
		if h.pacLimit > 0 {
			e.limit = h.pacLimit
		}
	}
	return e
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

// compilePAC compiles a script; name is its URL, for error messages.
func compilePAC(name string, src []byte) (*pacScript, error) {
	prog, err := goja.Compile(name, string(src), false)
	if err != nil {
		return nil, fmt.Errorf("PAC script does not compile: %w", err)
	}
	return &pacScript{name: name, prog: prog}, nil
}

// findProxy evaluates FindProxyForURL for u (FindProxyForURLEx when the
// script defines it) and returns its answer. Like browsers, it passes an
// https or wss URL as scheme://host:port/ only, without path or query, and
// never credentials or a fragment.
func (s *pacScript) findProxy(ctx context.Context, env pacEnv, u *url.URL) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, env.limit)
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
func (s *pacScript) evalError(ctx context.Context, err error) error {
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

func (s *pacScript) take() *pacVM {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.idle); n > 0 {
		vm := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return vm
	}
	return nil
}

func (s *pacScript) put(vm *pacVM) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idle) < pacIdleVMs {
		s.idle = append(s.idle, vm)
	}
}

// pacURL is the URL a script sees: http(s) schemes for ws(s), and for the
// secure ones only scheme://host[:port]/.
func pacURL(u *url.URL) string {
	c := *httpSchemeURL(u)
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

// parsePACResult turns "PROXY a:1; HTTPS b:2; SOCKS5 c:3; DIRECT" into
// proxy URLs (nil for DIRECT). PROXY is an http proxy, HTTPS an https one,
// SOCKS and SOCKS5 a SOCKS5 proxy that resolves names itself (socks5h, as
// browsers do for SOCKS5). SOCKS4 and unknown entries are skipped and
// returned in skipped, as are entries without a usable host and port
// (1-65535) and those whose URL scheme contradicts the keyword.
func parsePACResult(res string) (proxies []*url.URL, skipped []string) {
	for _, entry := range strings.Split(res, ";") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		kind := strings.ToUpper(fields[0])
		if kind == "DIRECT" && len(fields) == 1 {
			proxies = append(proxies, nil)
			continue
		}
		scheme := map[string]string{"PROXY": "http", "HTTP": "http", "HTTPS": "https", "SOCKS": "socks5h", "SOCKS5": "socks5h"}[kind]
		if scheme == "" || len(fields) != 2 {
			skipped = append(skipped, strings.TrimSpace(entry))
			continue
		}
		p := hostPortURL(scheme, fields[1], "")
		// Found by FuzzParsePACResult: a URL scheme in the entry overrode
		// its keyword ("PROXY ftp://a:1", "HTTPS http://a:1"), and hosts
		// and ports no dial can use (port 0 or 65536, "a/b", "user@a")
		// were taken. Such entries are skipped.
		if p == nil || p.Scheme != scheme || !usableHostPort(p) {
			skipped = append(skipped, strings.TrimSpace(entry))
			continue
		}
		proxies = append(proxies, p)
	}
	return proxies, skipped
}

// usableHostPort reports whether p.Host is a host (an IP address when it
// has a colon) and a port in 1-65535 that print and parse back unchanged.
func usableHostPort(p *url.URL) bool {
	if n, err := strconv.ParseUint(p.Port(), 10, 16); err != nil || n == 0 {
		return false
	}
	if h := p.Hostname(); strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return false
		}
	}
	back, err := url.Parse(p.String())
	return err == nil && back.Host == p.Host && back.User == nil && back.Path == "" && back.Hostname() != ""
}

// fetchPAC reads a PAC script from an http, https or file URL: directly
// (never through a proxy), within pacFetchTimeout, at most pacMaxBytes.
func (d *Dialer) fetchPAC(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("invalid PAC URL")
	}
	ctx, cancel := context.WithTimeout(ctx, pacFetchTimeout)
	defer cancel()
	switch u.Scheme {
	case "file":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readCapped(f)
	case "http", "https":
	default:
		return nil, fmt.Errorf("unsupported PAC URL scheme %q", u.Scheme)
	}
	tr := &http.Transport{
		Proxy:                  nil, // never fetch the PAC file through a proxy
		DialContext:            d.netDial,
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  pacFetchTimeout,
		MaxResponseHeaderBytes: int64(d.maxHeader()),
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", d.userAgent())
	resp, err := (&http.Client{Transport: tr, Timeout: pacFetchTimeout}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said by the caller, redacted
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return readCapped(resp.Body)
}

func readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, pacMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > pacMaxBytes {
		return nil, fmt.Errorf("PAC script larger than %d bytes", pacMaxBytes)
	}
	return b, nil
}

// pacCache holds compiled scripts by URL.
var pacCache = &pacScripts{c: newOnceCache[*pacScript](pacCacheTTL, pacFailTTL)}

type pacScripts struct{ c *onceCache[*pacScript] }

// get returns the compiled script at raw, fetching it when it is not
// cached or has expired.
func (p *pacScripts) get(ctx context.Context, d *Dialer, raw string) (*pacScript, error) {
	return p.c.get(ctx, raw, func(ctx context.Context) (*pacScript, error) {
		src, err := d.fetchPAC(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		return compilePAC(redactRaw(raw), src)
	})
}

func (p *pacScripts) invalidate() { p.c.invalidate() }

// onceCache caches one value per key, good answers for okTTL and failures
// for failTTL, with one fill at a time per key; other callers wait for it
// or for their context. A fill cut short by its caller's context is not
// cached.
type onceCache[T any] struct {
	okTTL, failTTL time.Duration
	now            func() time.Time

	mu sync.Mutex
	m  map[string]*onceEntry[T]
}

type onceEntry[T any] struct {
	val  T
	err  error
	at   time.Time
	done chan struct{} // closed when the fill ends
}

func newOnceCache[T any](okTTL, failTTL time.Duration) *onceCache[T] {
	return &onceCache[T]{okTTL: okTTL, failTTL: failTTL, now: time.Now, m: map[string]*onceEntry[T]{}}
}

func (c *onceCache[T]) get(ctx context.Context, key string, fill func(context.Context) (T, error)) (T, error) {
	for {
		c.mu.Lock()
		e := c.m[key]
		if e != nil {
			select {
			case <-e.done:
				ttl := c.okTTL
				if e.err != nil {
					ttl = c.failTTL
				}
				if c.now().Sub(e.at) < ttl {
					c.mu.Unlock()
					return e.val, e.err
				}
			default: // a fill is under way
				c.mu.Unlock()
				select {
				case <-e.done:
					continue
				case <-ctx.Done():
					var zero T
					return zero, ctx.Err()
				}
			}
		}
		c.prune()
		e = &onceEntry[T]{done: make(chan struct{})}
		c.m[key] = e
		c.mu.Unlock()

		v, err := fill(ctx)

		c.mu.Lock()
		e.val, e.err, e.at = v, err, c.now()
		close(e.done)
		if ctx.Err() != nil && err != nil && c.m[key] == e {
			delete(c.m, key) // the caller gave up: try again next time
		}
		c.mu.Unlock()
		return v, err
	}
}

// prune drops expired entries once the map grows; c.mu is held.
func (c *onceCache[T]) prune() {
	if len(c.m) < 64 {
		return
	}
	for k, e := range c.m {
		select {
		case <-e.done:
			if c.now().Sub(e.at) >= max(c.okTTL, c.failTTL) {
				delete(c.m, k)
			}
		default:
		}
	}
}

func (c *onceCache[T]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		select {
		case <-e.done:
			delete(c.m, k)
		default: // let the running fill finish; it is replaced next time
			e.at = time.Time{}
		}
	}
}

// sortIPList sorts ';'-separated addresses, IPv6 first, numerically, as
// sortIpAddressList does; ok is false when one is not an address.
func sortIPList(list string) (string, bool) {
	var ips []net.IP
	for _, s := range strings.Split(list, ";") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return "", false
		}
		ips = append(ips, ip)
	}
	sort.SliceStable(ips, func(i, j int) bool {
		i4, j4 := ips[i].To4() != nil, ips[j].To4() != nil
		if i4 != j4 {
			return !i4
		}
		return string(ips[i].To16()) < string(ips[j].To16())
	})
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return strings.Join(out, ";"), true
}
