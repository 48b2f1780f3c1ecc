//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

type config struct {
	rounds    int
	duration  time.Duration
	size      int
	idle      int
	streams   int
	perStream int
	write     string
	only      map[string]bool
	rows      *regexp.Regexp // contestants of the relay scenarios to run, by label
	baseline  string         // another build of this program whose bridge runs beside this one
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		runRole(role)
		return
	}
	var cfg config
	var only, rows string
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds per scenario; contestants alternate within each round")
	flag.DurationVar(&cfg.duration, "duration", 2*time.Second, "length of each throughput and latency measurement")
	flag.IntVar(&cfg.size, "size", 64<<10, "message size for bulk throughput, bytes")
	flag.IntVar(&cfg.idle, "idle", 8000, "idle bridged connections to hold in the many-connections scenario")
	flag.IntVar(&cfg.streams, "streams", 1000, "connections streaming at once in the many-connections scenario")
	flag.IntVar(&cfg.perStream, "per-stream", 256<<10, "bytes each streaming connection sends and verifies")
	flag.StringVar(&cfg.write, "write", "", "directory to write benchmarks.md and benchmarks.svg into (for example docs)")
	flag.StringVar(&only, "only", "throughput,small,conns,tunnel,dial", "scenarios to run")
	flag.StringVar(&cfg.baseline, "baseline", "", "path to a build of this program from another commit (go build -o old ./examples/bench there): its bridge runs as a contestant too, for before/after figures from one run")
	flag.StringVar(&rows, "rows", "", "regular expression: run only the relay scenarios' contestants whose label matches (for profiling one)")
	flag.Parse()
	if rows != "" {
		re, err := regexp.Compile(rows)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -rows: %v\n", err)
			os.Exit(2)
		}
		cfg.rows = re
	}
	cfg.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		cfg.only[strings.TrimSpace(s)] = true
	}
	raiseFileLimit()
	rep, err := runAll(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(rep.markdown())
	if cfg.write != "" {
		if err := rep.writeFiles(cfg.write); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
	}
}
