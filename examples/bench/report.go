//go:build linux

package main

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// table is one scenario's result as Markdown.
type table struct {
	title  string
	note   string
	header []string
	rows   [][]string
}

// bar is one value in the throughput chart.
type bar struct {
	label string
	value float64 // MB/s
}

type report struct {
	started time.Time
	command string
	tables  []table
	bars    []bar
	missing []string // peers or contestants that could not run, and why

	// The machine's load average over one minute at the start and the end
	// of the run (other work on the machine skews the figures).
	loadBefore, loadAfter string
}

// loadAverage returns the one-minute load average from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDur(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// machine describes where the figures were taken.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s, %s/%s, %s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), kernel, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s; load average (1 min) %s at the start, %s at the end.\n\nCommand: `%s`\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), machine(), r.loadBefore, r.loadAfter, r.command)
	for _, t := range r.tables {
		fmt.Fprintf(&b, "### %s\n\n", t.title)
		if t.note != "" {
			fmt.Fprintf(&b, "%s\n\n", t.note)
		}
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(t.header, " | "), strings.Repeat(" --- |", len(t.header)))
		for _, row := range t.rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
		b.WriteString("\n")
	}
	if len(r.missing) > 0 {
		b.WriteString("Not measured in this run:\n\n")
		for _, m := range r.missing {
			fmt.Fprintf(&b, "- %s\n", m)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// svg draws the bulk-throughput medians as horizontal bars.
func (r *report) svg() string {
	const width, left, barH, gap = 720, 260, 26, 10
	height := 50 + len(r.bars)*(barH+gap)
	maxV := 0.0
	for _, b := range r.bars {
		maxV = max(maxV, b.value)
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", width, height)
	fmt.Fprintf(&s, `<text x="10" y="22" font-size="15">Bulk echo throughput, MB/s (median of rounds; higher is better)</text>`+"\n")
	for i, b := range r.bars {
		y := 40 + i*(barH+gap)
		w := 0.0
		if maxV > 0 {
			w = b.value / maxV * float64(width-left-90)
		}
		fmt.Fprintf(&s, `<text x="10" y="%d">%s</text>`+"\n", y+18, html.EscapeString(b.label))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="#3b7dd8"/>`+"\n", left, y, w, barH)
		fmt.Fprintf(&s, `<text x="%.0f" y="%d">%.0f</text>`+"\n", float64(left)+w+6, y+18, b.value)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func (r *report) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := "# Benchmarks\n\nFigures from `examples/bench`, which runs every contestant on loopback in one run, alternating between them within each round, and reports medians. Reproduce them with the command below; see the README for what each scenario does.\n\n![bulk throughput](benchmarks.svg)\n\n" + r.markdown()
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "benchmarks.svg"), []byte(r.svg()), 0o644)
}
