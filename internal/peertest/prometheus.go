package peertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Prometheus is a running Prometheus server scraping test targets.
type Prometheus struct {
	URL  string // "http://127.0.0.1:port"
	proc *Process
}

// StartPrometheus starts Debian's prometheus on 127.0.0.1 with storage in
// a temporary directory, scraping targets ("host:port", path /metrics)
// every second as job "wsbridge", and waits until it is ready.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin := Require(t, "prometheus", "apt-get install -y prometheus")
	dir := t.TempDir()
	port := FreePort(t)
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: wsbridge
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	path := filepath.Join(dir, "prometheus.yml")
	WriteFile(t, path, cfg, 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := &Prometheus{URL: "http://" + addr}
	p.proc = Start(t, "prometheus", []string{bin, "--config.file=" + path,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
		"--log.level=warn"})
	p.proc.WaitTCP(t, addr, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) || p.proc.Exited() {
			t.Fatalf("peertest: prometheus not ready: %v\n%s", err, p.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Query runs an instant PromQL query and returns the value of its one
// result; ok is false when the result is empty (no data yet) or holds
// more than one series. Errors from the server fail the test.
func (p *Prometheus) Query(t testing.TB, query string) (value float64, ok bool) {
	t.Helper()
	resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatalf("peertest: prometheus query: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("peertest: prometheus query: %v", err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("peertest: prometheus query %q: %v %s: %s", query, err, r.Error, body)
	}
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("peertest: prometheus query %q: value %q: %v", query, s, err)
	}
	return v, true
}
