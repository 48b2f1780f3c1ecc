//go:build linux

package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"
)

// profileEnv names a directory where each child role writes, when it is
// stopped, a CPU profile of its whole run (ROLE-PID.cpu), a heap profile
// (ROLE-PID.heap) and a breakdown of its memory by runtime class
// (ROLE-PID.mem.txt), and on SIGUSR1 a snapshot of the last two
// (ROLE-PID.snapN.*): how the figures in docs/benchmarks.md were
// explained. Read them with `go tool pprof`.
const profileEnv = "WSPROXY_BENCH_PROFILE"

// startProfiling begins the CPU profile of a child role when profileEnv
// is set, and arranges for the profiles to be written when the parent
// stops the child with SIGTERM.
func startProfiling(role string) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", role, os.Getpid()))
	cpu, err := os.Create(base + ".cpu")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: profile: %v\n", role, err)
		return
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: profile: %v\n", role, err)
		return
	}
	snap := make(chan os.Signal, 1)
	signal.Notify(snap, syscall.SIGUSR1)
	go func() {
		for i := 1; ; i++ {
			<-snap
			writeMemory(fmt.Sprintf("%s.snap%d", base, i))
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		pprof.StopCPUProfile()
		cpu.Close()
		writeMemory(base)
		os.Exit(0)
	}()
}

// writeMemory writes a heap profile and the memory breakdown beside base.
// The parent sends SIGUSR1 for a snapshot while connections are open.
func writeMemory(base string) {
	if f, err := os.Create(base + ".heap"); err == nil {
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	_ = os.WriteFile(base+".mem.txt", []byte(memoryBreakdown()), 0o644)
}

// snapshotMemory asks a child role for a memory snapshot when profiling.
func snapshotMemory(pid int) {
	if os.Getenv(profileEnv) != "" {
		_ = syscall.Kill(pid, syscall.SIGUSR1)
		time.Sleep(500 * time.Millisecond)
	}
}

// memoryBreakdown lists the runtime's memory classes and the goroutine
// count, as of now.
func memoryBreakdown() string {
	names := []string{
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/unused:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/stacks:bytes",
		"/memory/classes/os-stacks:bytes",
		"/memory/classes/metadata/other:bytes",
		"/memory/classes/other:bytes",
		"/memory/classes/total:bytes",
		"/gc/stack/starting-size:bytes",
		"/sched/goroutines:goroutines",
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	out := ""
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out += fmt.Sprintf("%-45s %d\n", s.Name, s.Value.Uint64())
		}
	}
	return out + fmt.Sprintf("%-45s %d\n", "runtime.NumGoroutine", runtime.NumGoroutine())
}
