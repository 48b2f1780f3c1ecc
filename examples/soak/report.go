//go:build linux

package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/wsproxy/wsproxy/bridge"
)

// lagReport is how far behind their schedule the senders of one
// direction fell: each sender's worst delay, summarised over the senders.
type lagReport struct {
	P50Seconds   float64 `json:"p50_seconds"`
	P99Seconds   float64 `json:"p99_seconds"`
	MaxSeconds   float64 `json:"max_seconds"`
	MaxConn      int     `json:"max_conn"`       // the connection that fell furthest behind
	MaxAtSeconds float64 `json:"max_at_seconds"` // and when, since the start of streaming
}

// maxListed caps the failures a result lists; the count is always whole.
const maxListed = 20

// result is everything a run measured; -json prints it as is.
type result struct {
	Conns         int     `json:"conns"`
	Seconds       float64 `json:"duration_seconds"`
	Rate          int     `json:"rate_bytes_per_second"` // per connection and direction
	Msg           int     `json:"max_message_bytes"`
	Subprotocol   string  `json:"subprotocol"`
	BridgeProcess bool    `json:"bridge_process"` // false: RSS and goroutines are the whole soak's
	BridgePID     int     `json:"bridge_pid"`
	Seed          uint64  `json:"seed"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	NumCPU        int     `json:"num_cpu"`

	DialSeconds   float64 `json:"dial_seconds"`   // opening every connection, hellos paired
	StreamSeconds float64 `json:"stream_seconds"` // from the start of streaming to the last close

	// Indexed by direction: 0 client→target, 1 target→client.
	Sent           [2]int64     `json:"sent_bytes"`
	SentOnTime     [2]int64     `json:"sent_by_end_bytes"`     // written within the duration
	ReceivedOnTime [2]int64     `json:"received_by_end_bytes"` // arrived within the duration
	Verified       [2]int64     `json:"verified_bytes"`        // bytes of streams that arrived whole
	MBps           [2]float64   `json:"verified_mb_per_second"`
	RatePercent    [2]float64   `json:"on_time_percent"` // of the bytes sent, those received by the end of the duration
	Lag            [2]lagReport `json:"sender_lag"`

	CPU cpuReport `json:"cpu"` // while streaming

	ConnsFailed   int      `json:"conns_failed"`
	FailuresTotal int      `json:"failures_total"`
	Failures      []string `json:"failures"` // the first ones

	RSS struct {
		BaselineKiB int64 `json:"baseline_kib"` // before any connection
		IdleKiB     int64 `json:"idle_kib"`     // every connection open, before streaming
		AfterKiB    int64 `json:"after_kib"`    // every connection closed
	} `json:"rss"`
	Memory     memoryVerdict `json:"memory"`
	Goroutines struct {
		Baseline int `json:"baseline"`
		Idle     int `json:"idle"`
		Peak     int `json:"peak"`
		After    int `json:"after"`
	} `json:"goroutines"`
	// The bridge's heap after garbage collection. After the close it
	// keeps the runtime's goroutine descriptors, which Go never frees:
	// some 0.5 KiB for each goroutine that was alive at the peak.
	LiveHeap struct {
		Baseline uint64 `json:"baseline_bytes"` // before any connection
		After    uint64 `json:"after_bytes"`    // every connection closed
	} `json:"live_heap"`
	BridgeAfter bridge.Stats  `json:"bridge_after"`
	Warnings    int64         `json:"bridge_warnings"`
	Sampler     samplerReport `json:"sampler"`
	Samples     []sample      `json:"samples"`

	Problems []string `json:"problems"`
	Pass     bool     `json:"pass"`
}

func newResult(cfg config) *result {
	return &result{
		Conns: cfg.conns, Seconds: cfg.duration.Seconds(), Rate: cfg.rate, Msg: cfg.msg,
		Subprotocol: cfg.subprotocol, BridgeProcess: cfg.bridgeProc, Seed: cfg.seed,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		Failures: []string{}, Problems: []string{},
	}
}

func (r *result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *result) failure(msgs ...string) {
	for _, m := range msgs {
		r.FailuresTotal++
		if len(r.Failures) < maxListed {
			r.Failures = append(r.Failures, m)
		}
	}
}

// checkBridge compares the bridge's own counters, read after the run,
// with what the soak sent and saw.
func (r *result) checkBridge(cfg config) {
	st := r.BridgeAfter
	if st.Open != 0 {
		r.problem("bridge still counts %d open connections after every client closed", st.Open)
	}
	if r.Goroutines.After > r.Goroutines.Baseline {
		r.problem("bridge goroutines did not return to the baseline: %d before the run, %d after", r.Goroutines.Baseline, r.Goroutines.After)
	}
	if st.Total != uint64(cfg.conns) || st.Failed != 0 || st.Refused != 0 {
		r.problem("bridge counted %d connections (%d failed, %d refused), want %d and none", st.Total, st.Failed, st.Refused, cfg.conns)
	}
	// The hellos cross the bridge too.
	if want := r.Sent[up] + int64(cfg.conns*helloLen); r.FailuresTotal == 0 && st.BytesIn != want {
		r.problem("bridge counted %d bytes from clients, the clients sent %d", st.BytesIn, want)
	}
	if r.FailuresTotal == 0 && st.BytesOut != r.Sent[down] {
		r.problem("bridge counted %d bytes to clients, the target sent %d", st.BytesOut, r.Sent[down])
	}
	if r.Warnings > 0 {
		r.problem("bridge logged %d warnings (the first ones are on stderr)", r.Warnings)
	}
	if !r.Memory.Flat {
		if r.Memory.SamplesJudged < 2 {
			r.problem("memory: only %d samples after the warm-up; run longer or sample more often", r.Memory.SamplesJudged)
		} else {
			r.problem("memory not flat: bridge RSS grew %.1f%% after the warm-up (from %s to %s; %.0f%% allowed)",
				r.Memory.GrowthPercent, kib(r.Memory.RSSWarmupKiB), kib(r.Memory.RSSMaxKiB), r.Memory.TolerancePct)
		}
	}
}

func (r *result) finish() *result {
	if r.FailuresTotal > 0 {
		r.problem("%d connections failed the integrity or closing checks (%d failures)", r.ConnsFailed, r.FailuresTotal)
	}
	r.Pass = len(r.Problems) == 0
	return r
}

func kib(k int64) string {
	if k >= 10<<10 {
		return fmt.Sprintf("%.0f MiB", float64(k)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(k)/1024)
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

// writeSummary prints the result for people.
func (r *result) writeSummary(w io.Writer) {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	where := fmt.Sprintf("child process %d", r.BridgePID)
	if !r.BridgeProcess {
		where = "in process (memory and goroutines are the whole program's)"
	}
	fmt.Fprintf(w, "soak %s: %d connections × %gs, %s/s per connection each way, messages 1..%d bytes, subprotocol %s\n",
		verdict, r.Conns, r.Seconds, byteSize{&r.Rate}, r.Msg, r.Subprotocol)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("bridge", "%s; GOMAXPROCS %d, %d CPUs; seed %d", where, r.GOMAXPROCS, r.NumCPU, r.Seed)
	row("opened", "%d connections in %.2fs", r.Conns, r.DialSeconds)
	for d, name := range dirNames {
		l := r.Lag[d]
		row(name, "%d bytes verified (%s), %.1f MB/s aggregate; %.1f%% arrived within the duration",
			r.Verified[d], mb(r.Verified[d]), r.MBps[d], r.RatePercent[d])
		row("", "senders' worst lag behind schedule: median %.2fs, p99 %.2fs, max %.2fs (connection %d, at %.0fs)",
			l.P50Seconds, l.P99Seconds, l.MaxSeconds, l.MaxConn, l.MaxAtSeconds)
	}
	if r.BridgeProcess {
		row("CPU while streaming", "bridge %.0f%%, soak (clients, target, checks) %.0f%%; whole machine %.0f%% of %d%% (other processes and the kernel included)",
			r.CPU.BridgePercent, r.CPU.SoakPercent, r.CPU.MachinePercent, 100*r.NumCPU)
	} else {
		row("CPU while streaming", "%.0f%% (bridge, clients, target and checks); whole machine %.0f%% of %d%%",
			r.CPU.SoakPercent, r.CPU.MachinePercent, 100*r.NumCPU)
	}
	row("integrity", "%d of %d connections failed", r.ConnsFailed, r.Conns)
	m := r.Memory
	row("bridge RSS", "%s before, %s idle with every connection open, %s after the close",
		kib(r.RSS.BaselineKiB), kib(r.RSS.IdleKiB), kib(r.RSS.AfterKiB))
	row("while streaming", "%s at the end of the %gs warm-up; then min %s, max %s, end %s (%+.1f%%, %.0f%% allowed): %s",
		kib(m.RSSWarmupKiB), m.WarmupSeconds, kib(m.RSSMinKiB), kib(m.RSSMaxKiB), kib(m.RSSEndKiB), m.GrowthPercent, m.TolerancePct, flat(m))
	if r.Conns > 0 && r.BridgeProcess {
		row("RSS per connection", "%.1f KiB idle, %.1f KiB streaming (over the baseline)",
			float64(r.RSS.IdleKiB-r.RSS.BaselineKiB)/float64(r.Conns), float64(m.RSSWarmupKiB-r.RSS.BaselineKiB)/float64(r.Conns))
	}
	row("bridge heap", "%s at the end of the warm-up, %s max; live heap %.1f MB before, %.1f MB after the close",
		mb(int64(m.HeapWarmup)), mb(int64(m.HeapMax)), float64(r.LiveHeap.Baseline)/1e6, float64(r.LiveHeap.After)/1e6)
	row("bridge /stats", "slowest answer %.0f ms, %d ticks skipped waiting for one, %d failed",
		r.Sampler.StatsMaxMs, r.Sampler.StatsSkipped, r.Sampler.StatsErrors)
	row("goroutines", "%d before, %d idle, %d peak, %d after the close", r.Goroutines.Baseline, r.Goroutines.Idle, r.Goroutines.Peak, r.Goroutines.After)
	row("bridge counters", "%s; %d warnings logged", r.BridgeAfter, r.Warnings)
	_ = tw.Flush()
	if r.FailuresTotal > 0 {
		fmt.Fprintf(w, "failures (%d", r.FailuresTotal)
		if r.FailuresTotal > len(r.Failures) {
			fmt.Fprintf(w, ", first %d", len(r.Failures))
		}
		fmt.Fprintln(w, "):")
		for _, f := range r.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "problems:")
		for _, p := range r.Problems {
			fmt.Fprintln(w, "  "+strings.TrimSpace(p))
		}
	}
}

func flat(m memoryVerdict) string {
	if m.Flat {
		return "flat"
	}
	return "NOT flat"
}
