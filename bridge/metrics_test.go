package bridge_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// pathResolver picks the target by path: /ok the echo server, /down a
// port nobody listens on, anything else an unknown token.
type pathResolver struct{ echo, down string }

func (p pathResolver) Resolve(_ context.Context, r *http.Request) (bridge.Target, error) {
	switch r.URL.Path {
	case "/ok":
		return bridge.Target{Address: p.echo}, nil
	case "/down":
		return bridge.Target{Address: p.down}, nil
	}
	return bridge.Target{}, bridge.ErrUnknownToken
}

// gathered is one scrape of a registry, by metric name.
type gathered map[string]*dto.MetricFamily

func scrape(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	g := gathered{}
	for _, mf := range mfs {
		g[mf.GetName()] = mf
	}
	return g
}

// value returns the counter, gauge or histogram count of the series with
// exactly these label values (name=value pairs), or -1 when absent.
func (g gathered) value(name string, labels ...string) float64 {
	mf := g[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// sum adds every series of a metric whose label has the value.
func (g gathered) sum(name, label, value string) float64 {
	total := 0.0
	for _, m := range g[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == value {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func echoExactly(t *testing.T, c *websocket.Conn, n int) {
	t.Helper()
	payload := randomBytes(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, payload))
	assert.Equal(t, payload, readN(t, c, n, false))
}

// TestMetricsAgreeWithStats: the collector's figures equal Stats() and
// what the clients sent, refusals and failures are counted by reason,
// close codes by code.
func TestMetricsAgreeWithStats(t *testing.T) {
	t.Parallel()
	down := peertest.FreePort(t) // nothing listens there
	h := &bridge.Handler{Resolver: pathResolver{echo: peertest.EchoServer(t), down: "127.0.0.1:" + strconv.Itoa(down)}}
	url, _ := serve(t, h)
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())

	sizes := []int{1000, 20000, 70000}
	conns := make([]*websocket.Conn, len(sizes))
	for i, n := range sizes {
		conns[i] = dial(t, url+"/ok", nil)
		echoExactly(t, conns[i], n)
	}
	require.NoError(t, conns[0].Close(websocket.StatusNormalClosure, "done"))
	require.NoError(t, conns[1].Close(4001, "application code"))

	text := dial(t, url+"/ok", nil) // a text message in binary mode: the bridge closes with 1003
	require.NoError(t, text.Write(context.Background(), websocket.MessageText, []byte("not binary")))
	_, _, err := text.Read(context.Background())
	assert.Equal(t, websocket.StatusUnsupportedData, websocket.CloseStatus(err))

	c := dial(t, url+"/down", nil)
	_, _, err = c.Read(context.Background())
	assert.Equal(t, websocket.StatusInternalError, websocket.CloseStatus(err))
	status, _ := dialStatus(t, url+"/nope", nil)
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = dialStatus(t, url+"/ok", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	assert.Equal(t, http.StatusForbidden, status)

	sent := 0
	for _, n := range sizes {
		sent += n
	}
	require.Eventually(t, func() bool {
		s := h.Stats()
		return s.Open == 1 && s.BytesIn == int64(sent) && s.BytesOut == int64(sent)
	}, 5*time.Second, 5*time.Millisecond, "stats: %+v", h.Stats())
	require.Eventually(t, func() bool {
		g := scrape(t, reg)
		return g.value("wsbridge_closes_total", "code", "4001") == 1 && g.value("wsbridge_closes_total", "code", "1003") == 1
	},
		5*time.Second, 5*time.Millisecond)

	// Each figure against what the test did, in Stats and in the scrape:
	// so the two agree with each other and with the clients.
	s := h.Stats()
	assert.Equal(t, bridge.Stats{Open: 1, Total: 5, Refused: 2, Failed: 1, BytesIn: int64(sent), BytesOut: int64(sent)}, s)
	g := scrape(t, reg)
	assert.Equal(t, 1.0, g.value("wsbridge_connections_open"))
	assert.Equal(t, float64(sent), g.value("wsbridge_bytes_total", "direction", "to_target"))
	assert.Equal(t, float64(sent), g.value("wsbridge_bytes_total", "direction", "to_client"))
	assert.Equal(t, 4.0, g.value("wsbridge_connections_total", "result", "ok"))
	assert.Equal(t, 1.0, g.value("wsbridge_connections_total", "result", "failed", "reason", "dial"))
	assert.Equal(t, 1.0, g.value("wsbridge_connections_total", "result", "refused", "reason", "unknown_token"))
	assert.Equal(t, 1.0, g.value("wsbridge_connections_total", "result", "refused", "reason", "origin"))
	assert.Equal(t, 0.0, g.value("wsbridge_connections_total", "result", "refused", "reason", "limit"))
	assert.Equal(t, 2.0, g.sum("wsbridge_connections_total", "result", "refused"))
	assert.Equal(t, 5.0, g.value("wsbridge_connections_total", "result", "ok")+g.value("wsbridge_connections_total", "result", "failed"))
	assert.Equal(t, 1.0, g.value("wsbridge_closes_total", "code", "1000"))
	assert.Equal(t, 1.0, g.value("wsbridge_closes_total", "code", "1011"))
	assert.Equal(t, 5.0, g.value("wsbridge_target_dial_seconds"), "every dial, the failed one too")
	assert.Equal(t, 3.0, g.value("wsbridge_connection_duration_seconds"), "ended relays")
	assert.Equal(t, 0.0, g.value("wsbridge_draining"))
	for name, mf := range g {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				assert.Contains(t, []string{"result", "reason", "direction", "code"}, lp.GetName(), "%s has a label that could name a client", name)
			}
		}
	}
}

// TestCloseCodeLabelsBounded: clients choosing application close codes
// cannot grow the metric beyond its cap.
func TestCloseCodeLabelsBounded(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{}
	url, _ := echoBridge(t, h)
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	const clients = 40
	for i := range clients {
		c := dial(t, url, nil)
		echoExactly(t, c, 10)
		require.NoError(t, c.Close(websocket.StatusCode(4000+i), ""))
	}
	require.Eventually(t, func() bool { return h.Stats().Open == 0 }, 5*time.Second, 5*time.Millisecond)
	g := scrape(t, reg)
	series := g["wsbridge_closes_total"].GetMetric()
	assert.LessOrEqual(t, len(series), 33, "at most 32 codes and other")
	total := 0.0
	for _, m := range series {
		total += m.GetCounter().GetValue()
	}
	assert.Equal(t, float64(clients), total, "every close counted")
	assert.Positive(t, g.value("wsbridge_closes_total", "code", "other"))
}

// TestDrainAndHealth: /readyz turns 503 on Drain while /healthz stays 200
// and connections are still served; Shutdown then refuses with reason
// draining.
func TestDrainAndHealth(t *testing.T) {
	t.Parallel()
	h := &bridge.Handler{}
	url, _ := echoBridge(t, h)
	health := httptest.NewServer(h.HealthHandler())
	t.Cleanup(health.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	get := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, health.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	code, body := get("GET", "/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready", body)
	code, _ = get("GET", "/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get("GET", "/other")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = get("POST", "/readyz")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
	assert.True(t, h.Ready())

	open := dial(t, url, nil)
	h.Drain()
	assert.False(t, h.Ready())
	code, body = get("GET", "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "draining", body)
	code, _ = get("GET", "/healthz")
	assert.Equal(t, http.StatusOK, code, "liveness does not change while draining")
	assert.Equal(t, 1.0, scrape(t, reg).value("wsbridge_draining"))
	echoExactly(t, open, 100)
	fresh := dial(t, url, nil)
	echoExactly(t, fresh, 100) // new connections are still served while draining
	require.NoError(t, fresh.Close(websocket.StatusNormalClosure, ""))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- h.Shutdown(ctx)
	}()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			c.CloseNow()
			return false
		}
		return resp != nil && resp.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, <-done, context.DeadlineExceeded)
	_, _, err := open.Read(context.Background())
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err))
	g := scrape(t, reg)
	assert.GreaterOrEqual(t, g.value("wsbridge_connections_total", "result", "refused", "reason", "draining"), 1.0)
	assert.Equal(t, 1.0, g.value("wsbridge_closes_total", "code", "1001"))
}
