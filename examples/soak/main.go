//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is one soak run.
type config struct {
	conns       int
	duration    time.Duration
	rate        int // bytes per second, per connection and direction
	msg         int // largest message (chunk) a sender writes; sizes are random in 1..msg
	subprotocol string
	bridgeProc  bool
	jsonOut     bool
	warmup      time.Duration // 0: the longer of 20% of the duration and 5 s, at most half the duration
	memTol      float64       // RSS growth allowed after the warm-up, in percent
	minRate     float64       // percent of each direction's bytes that must arrive within the duration; 0: no check
	drain       time.Duration // how long after the end the streams may take to finish
	settle      time.Duration // how long the bridge may take to return to its baseline
	sampleEvery time.Duration // 0: 1 s, or a tenth of the duration when shorter
	seed        uint64
	dialers     int // connections dialed at once
	cpuProfile  string

	// bridgeDial replaces the in-process bridge's dialer (tests only).
	bridgeDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func defaultConfig() config {
	return config{
		conns:       2000,
		duration:    60 * time.Second,
		rate:        16 << 10,
		msg:         32 << 10,
		subprotocol: "binary",
		bridgeProc:  true,
		memTol:      25,
		minRate:     95,
		drain:       30 * time.Second,
		settle:      10 * time.Second,
		dialers:     64,
	}
}

// warmupTime is the part of the run excluded from the memory judgement.
func (c config) warmupTime() time.Duration {
	if c.warmup > 0 {
		return c.warmup
	}
	return min(max(c.duration/5, 5*time.Second), c.duration/2)
}

// byteSize is a flag for sizes: a number of bytes, with an optional KiB or
// MiB suffix.
type byteSize struct{ p *int }

func (b byteSize) String() string {
	if b.p == nil {
		return ""
	}
	switch n := *b.p; {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n)
	}
}

func (b byteSize) Set(s string) error {
	mul := 1
	num := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mul    int
	}{{"MiB", 1 << 20}, {"KiB", 1 << 10}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mul = strings.TrimSpace(v), u.mul
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive size like 65536, 64KiB or 1MiB")
	}
	*b.p = n * mul
	return nil
}

var errUsage = errors.New("usage")

func parseFlags(args []string, errOut io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&cfg.conns, "conns", cfg.conns, "concurrent bridged connections")
	fs.DurationVar(&cfg.duration, "duration", cfg.duration, "how long every connection streams")
	fs.Var(byteSize{&cfg.rate}, "rate", "bytes per second each connection sends in each direction (suffix KiB or MiB allowed)")
	fs.Var(byteSize{&cfg.msg}, "msg", "largest message; each message has a random size from 1 to this")
	fs.StringVar(&cfg.subprotocol, "subprotocol", cfg.subprotocol, "WebSocket subprotocol the clients speak: binary or base64")
	fs.BoolVar(&cfg.bridgeProc, "bridge-proc", cfg.bridgeProc, "run the bridge in a child process, so that its memory is measured alone")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the result as JSON instead of a summary")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "start of the run left out of the memory check (0: the longer of 20% of -duration and 5s, at most half of it)")
	fs.Float64Var(&cfg.memTol, "mem-tolerance", cfg.memTol, "percent the bridge's RSS may grow after the warm-up")
	fs.Float64Var(&cfg.minRate, "on-time", cfg.minRate, "percent of each direction's bytes that must arrive within -duration; less means the machine did not keep up with -rate (0: do not check)")
	fs.DurationVar(&cfg.drain, "drain", cfg.drain, "how long the streams may take to finish after -duration")
	fs.DurationVar(&cfg.sampleEvery, "sample", 0, "interval between looks at the bridge's memory and goroutines (0: 1s, or a tenth of -duration when shorter)")
	fs.Uint64Var(&cfg.seed, "seed", 0, "seed of the random streams (0: from the clock); the summary prints it")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (clients, target, checks; not the bridge child) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage // the flag package has said why
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return cfg, cfg.check()
}

func (c *config) check() error {
	switch {
	case c.conns < 1:
		return errors.New("-conns must be at least 1")
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.subprotocol != "binary" && c.subprotocol != "base64":
		return fmt.Errorf("-subprotocol %q: want binary or base64", c.subprotocol)
	case c.sampleEvery < 0:
		return errors.New("-sample must not be negative")
	case c.msg > 512<<10:
		// The bridge reads a base64 message whole, up to 1 MiB; keep
		// both modes alike.
		return errors.New("-msg must be at most 512KiB")
	}
	if c.sampleEvery == 0 {
		c.sampleEvery = max(min(time.Second, c.duration/10), 10*time.Millisecond)
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	if c.dialers <= 0 {
		c.dialers = 64
	}
	return nil
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(soakMain(os.Args[1:]))
}

// soakMain runs the soak the command line asks for and returns the exit
// status: 0 when the bridge passed, 1 when it failed or the soak could not
// run, 2 for a bad command line.
func soakMain(args []string) int {
	cfg, err := parseFlags(args, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		return 2
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak: %v\n", err)
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		return 1
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.writeSummary(os.Stdout)
	}
	if !res.Pass {
		return 1
	}
	return 0
}
