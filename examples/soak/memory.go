//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rssKiB reads the resident memory of a process (VmRSS) from /proc.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib)
			return kib, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTicks reads a process's user and system CPU time from /proc, in
// clock ticks (USER_HZ, 100 a second on Linux).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ut, st int64
	if _, err := fmt.Sscan(f[11], &ut); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &st); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// machineTicks reads the whole machine's busy CPU time from /proc/stat,
// in clock ticks: everything but idle and iowait, over all CPUs.
func machineTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			return 0, err
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is in user already
			busy += n
		}
	}
	return busy, nil
}

// cpuMark is the CPU time of the bridge, of this process and of the
// machine at a moment.
type cpuMark struct {
	at                    time.Time
	bridge, self, machine int64
}

func cpuNow(bridgePID int) cpuMark {
	m := cpuMark{at: time.Now()}
	m.bridge, _ = cpuTicks(bridgePID)
	if bridgePID != os.Getpid() {
		m.self, _ = cpuTicks(os.Getpid())
	}
	m.machine, _ = machineTicks()
	return m
}

// cpuReport is CPU use over an interval, in percent of one core.
type cpuReport struct {
	BridgePercent  float64 `json:"bridge_percent"`  // 0 when the bridge runs in process
	SoakPercent    float64 `json:"soak_percent"`    // clients, target and checks (and the bridge, in process)
	MachinePercent float64 `json:"machine_percent"` // every process and the kernel, out of 100 × CPUs
}

func cpuUse(a, b cpuMark) cpuReport {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return cpuReport{}
	}
	pct := func(t int64) float64 { return float64(t) / 100 / secs * 100 }
	r := cpuReport{MachinePercent: pct(b.machine - a.machine)}
	if a.self == 0 && b.self == 0 {
		r.SoakPercent = pct(b.bridge - a.bridge)
	} else {
		r.BridgePercent, r.SoakPercent = pct(b.bridge-a.bridge), pct(b.self-a.self)
	}
	return r
}

// sample is one look at the bridge.
type sample struct {
	At         time.Time `json:"-"`
	T          float64   `json:"t"` // seconds since streaming started; negative before
	RSSKiB     int64     `json:"rss_kib"`
	HeapBytes  uint64    `json:"heap_bytes"`
	Goroutines int       `json:"goroutines"` // -1 when /stats did not answer in time
	Open       int64     `json:"open"`
	StatsMs    float64   `json:"stats_ms"` // how long /stats took
}

// sampler looks at the bridge every interval until stopped: RSS from
// /proc at each tick, the rest from the bridge's /stats, asked in the
// background so that a bridge slow to answer does not delay the RSS
// series (a tick finding the previous request still out records RSS
// only).
type sampler struct {
	b        *bridgeRef
	every    time.Duration
	onSample func(sample)
	busy     atomic.Bool
	fetching sync.WaitGroup
	mu       sync.Mutex
	samples  []sample
	errs     int
	skipped  int
	lastErr  error
	quit     chan struct{}
	done     chan struct{}
}

func startSampler(b *bridgeRef, every time.Duration, onSample func(sample)) *sampler {
	s := &sampler{b: b, every: every, onSample: onSample, quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.take()
		select {
		case <-s.quit:
			s.fetching.Wait()
			return
		case <-t.C:
		}
	}
}

func (s *sampler) take() {
	now := time.Now()
	rss, err := rssKiB(s.b.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		s.lastErr = err
		return
	}
	i := len(s.samples)
	s.samples = append(s.samples, sample{At: now, RSSKiB: rss, Goroutines: -1, Open: -1})
	if !s.busy.CompareAndSwap(false, true) {
		s.skipped++
		return
	}
	s.fetching.Go(func() {
		defer s.busy.Store(false)
		st, err := s.b.stats(false)
		took := time.Since(now)
		s.mu.Lock()
		if err != nil {
			s.errs++
			s.lastErr = err
			s.mu.Unlock()
			return
		}
		sm := &s.samples[i]
		sm.HeapBytes, sm.Goroutines, sm.Open = st.HeapBytes, st.Goroutines, st.Bridge.Open
		sm.StatsMs = float64(took) / float64(time.Millisecond)
		done := *sm
		s.mu.Unlock()
		if s.onSample != nil {
			s.onSample(done)
		}
	})
}

// samplerReport is what the sampler saw besides the samples.
type samplerReport struct {
	StatsErrors  int     `json:"stats_errors"`  // /stats failed or timed out (5 s)
	StatsSkipped int     `json:"stats_skipped"` // ticks with the previous /stats still unanswered
	StatsMaxMs   float64 `json:"stats_max_ms"`  // the slowest answer
	LastError    string  `json:"last_error,omitempty"`
}

// stop ends the sampling and returns the samples, their times made
// relative to t0.
func (s *sampler) stop(t0 time.Time) ([]sample, samplerReport) {
	close(s.quit)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := samplerReport{StatsErrors: s.errs, StatsSkipped: s.skipped}
	if s.lastErr != nil {
		rep.LastError = s.lastErr.Error()
	}
	out := make([]sample, len(s.samples))
	for i, sm := range s.samples {
		if !t0.IsZero() {
			sm.T = sm.At.Sub(t0).Seconds()
		}
		rep.StatsMaxMs = max(rep.StatsMaxMs, sm.StatsMs)
		out[i] = sm
	}
	return out, rep
}

// memoryVerdict judges "memory flat after the first seconds": over the
// streaming samples after the warm-up, the highest RSS must not exceed
// the RSS at the end of the warm-up by more than the tolerance.
type memoryVerdict struct {
	WarmupSeconds  float64 `json:"warmup_seconds"`
	RSSWarmupKiB   int64   `json:"rss_warmup_kib"` // first sample at or after the warm-up
	RSSMinKiB      int64   `json:"rss_min_kib"`    // after the warm-up, while streaming
	RSSMaxKiB      int64   `json:"rss_max_kib"`
	RSSEndKiB      int64   `json:"rss_end_kib"` // last sample while streaming
	GrowthPercent  float64 `json:"growth_percent"`
	TolerancePct   float64 `json:"tolerance_percent"`
	HeapWarmup     uint64  `json:"heap_warmup_bytes"` // first answer from /stats after the warm-up
	HeapMax        uint64  `json:"heap_max_bytes"`
	SamplesJudged  int     `json:"samples_judged"`
	Flat           bool    `json:"flat"`
	PeakGoroutines int     `json:"peak_goroutines"`
}

func judgeMemory(samples []sample, warmup, duration time.Duration, tolerance float64) memoryVerdict {
	v := memoryVerdict{WarmupSeconds: warmup.Seconds(), TolerancePct: tolerance * 100}
	w, end := warmup.Seconds(), duration.Seconds()
	for _, s := range samples {
		if s.T >= 0 && s.T <= end+0.5 {
			v.PeakGoroutines = max(v.PeakGoroutines, s.Goroutines)
		}
		if s.T < w || s.T > end {
			continue
		}
		if v.SamplesJudged == 0 {
			v.RSSWarmupKiB, v.RSSMinKiB = s.RSSKiB, s.RSSKiB
		}
		v.SamplesJudged++
		v.RSSMinKiB = min(v.RSSMinKiB, s.RSSKiB)
		v.RSSMaxKiB = max(v.RSSMaxKiB, s.RSSKiB)
		v.RSSEndKiB = s.RSSKiB
		if s.Goroutines >= 0 { // /stats answered
			if v.HeapWarmup == 0 {
				v.HeapWarmup = s.HeapBytes
			}
			v.HeapMax = max(v.HeapMax, s.HeapBytes)
		}
	}
	if v.SamplesJudged < 2 {
		return v // too few samples to call it flat
	}
	v.GrowthPercent = 100 * float64(v.RSSMaxKiB-v.RSSWarmupKiB) / float64(v.RSSWarmupKiB)
	v.Flat = v.GrowthPercent <= v.TolerancePct
	return v
}
