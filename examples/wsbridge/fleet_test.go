package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// bridgeProc is a wsbridge process with --metrics-listen.
type bridgeProc struct {
	*peertest.Process
	addr, metrics string // "127.0.0.1:port" of the bridge and of its metrics listener
}

// startBridgeProc runs the wsbridge binary on free ports with
// --metrics-listen and args, and waits until both listeners accept.
func startBridgeProc(t *testing.T, name string, args ...string) *bridgeProc {
	t.Helper()
	b := &bridgeProc{
		addr:    "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t)),
		metrics: "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t)),
	}
	argv := append([]string{binary(t), "--metrics-listen", b.metrics, b.addr}, args...)
	b.Process = peertest.Start(t, name, argv)
	b.WaitTCP(t, b.metrics, 10*time.Second)
	b.WaitTCP(t, b.addr, 10*time.Second)
	return b
}

// status GETs a path of the metrics listener and returns the status.
func (b *bridgeProc) status(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + b.metrics + path)
	if err != nil {
		t.Fatalf("%s%s: %v", b.Name, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric scrapes /metrics and returns the sum of the samples of name
// whose labels include every label="value" in labels (Prometheus text
// format as promhttp writes it).
func (b *bridgeProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.metrics + "/metrics")
	if err != nil {
		t.Fatalf("%s /metrics: %v", b.Name, err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, val := line[:i], line[i+1:]
		if !hasLabels(series, labels) {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", b.Name, line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s /metrics: %v", b.Name, err)
	}
	return sum
}

func hasLabels(series string, labels []string) bool {
	for _, l := range labels {
		if !strings.Contains(series, l) {
			return false
		}
	}
	return true
}
