// Metrics: the counters behind Stats by reason, the latency histograms
// and close codes, and a prometheus.Collector that reads them at scrape
// time.

package bridge

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// refuseReason says why a request was refused, as the reason label of
// wsbridge_connections_total{result="refused"}.
type refuseReason uint8

const (
	reasonClientCert       refuseReason = iota // ClientCertCNs
	reasonAuth                                 // BasicAuth
	reasonOrigin                               // AllowedOrigins
	reasonConfig                               // no Resolver
	reasonLimit                                // MaxConns reached
	reasonDraining                             // Shutdown called
	reasonNoToken                              // ErrNoToken
	reasonUnknownToken                         // ErrUnknownToken
	reasonTargetNotAllowed                     // ErrTargetNotAllowed
	reasonInvalidToken                         // ErrInvalidToken (a JWT that fails its checks)
	reasonLookup                               // the TargetResolver failed otherwise
	reasonHandshake                            // the WebSocket handshake failed
	numRefuseReasons
)

var refuseReasonNames = [numRefuseReasons]string{
	reasonClientCert:       "client_cert",
	reasonAuth:             "auth",
	reasonOrigin:           "origin",
	reasonConfig:           "config",
	reasonLimit:            "limit",
	reasonDraining:         "draining",
	reasonNoToken:          "no_token",
	reasonUnknownToken:     "unknown_token",
	reasonTargetNotAllowed: "target_not_allowed",
	reasonInvalidToken:     "invalid_token",
	reasonLookup:           "lookup",
	reasonHandshake:        "handshake",
}

func (r refuseReason) String() string { return refuseReasonNames[r] }

// refusals counts refused requests by reason; Stats.Refused is their sum.
type refusals [numRefuseReasons]atomic.Uint64

func (c *refusals) add(r refuseReason) { c[r].Add(1) }

func (c *refusals) sum() uint64 {
	var n uint64
	for i := range c {
		n += c[i].Load()
	}
	return n
}

// maxCloseCodes bounds the distinct close codes wsbridge_closes_total
// keeps apart: clients may send any application code (3000-4999), and
// metrics must not grow with what clients choose. Codes seen after this
// many are counted as "other".
const maxCloseCodes = 32

// Histogram buckets, in seconds: dials from a millisecond to
// DefaultDialTimeout; connections from a tenth of a second to a day.
var (
	dialBuckets     = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	durationBuckets = []float64{.1, .5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400}
)

// connMetrics holds what Stats does not: the histograms and close codes.
// Its zero value is ready; the histograms are made on first use.
type connMetrics struct {
	once           sync.Once
	dial, duration prometheus.Histogram
	relayed        atomic.Uint64 // connections whose relay started (result="ok")

	mu     sync.Mutex
	closes map[string]uint64 // by decimal code, at most maxCloseCodes of them, plus "other"
}

func (m *connMetrics) init() {
	m.once.Do(func() {
		m.dial = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wsbridge_target_dial_seconds",
			Help: "Time to connect to the target (TLS included), failed dials too.", Buckets: dialBuckets})
		m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wsbridge_connection_duration_seconds",
			Help: "Life of relayed connections, from the WebSocket handshake to the end.", Buckets: durationBuckets})
	})
}

func (m *connMetrics) observeDial(d time.Duration) {
	m.init()
	m.dial.Observe(d.Seconds())
}

func (m *connMetrics) observeDuration(d time.Duration) {
	m.init()
	m.duration.Observe(d.Seconds())
}

// countClose counts a connection's end by its close status (see
// endDecision.status).
func (m *connMetrics) countClose(code websocket.StatusCode) {
	key := strconv.Itoa(int(code))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closes == nil {
		m.closes = make(map[string]uint64)
	}
	if _, ok := m.closes[key]; !ok && len(m.closes) >= maxCloseCodes {
		key = "other"
	}
	m.closes[key]++
}

func (m *connMetrics) closeCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.closes))
	for k, v := range m.closes {
		out[k] = v
	}
	return out
}

var (
	descOpen = prometheus.NewDesc("wsbridge_connections_open",
		"Connections being served now (handshake, dial or relay).", nil, nil)
	descConns = prometheus.NewDesc("wsbridge_connections_total",
		"Connections by result: ok (relayed, counted when the relay starts), refused before the relay (by reason) or failed (the target dial).",
		[]string{"result", "reason"}, nil)
	descBytes = prometheus.NewDesc("wsbridge_bytes_total",
		"Payload bytes relayed, open connections included.", []string{"direction"}, nil)
	descCloses = prometheus.NewDesc("wsbridge_closes_total",
		"Ended connections by WebSocket close code (1005: closed without a code, 1006: without a closing handshake).",
		[]string{"code"}, nil)
	descDraining = prometheus.NewDesc("wsbridge_draining",
		"1 from Drain or Shutdown on: the bridge wants no new connections.", nil, nil)
)

// Collector returns a prometheus.Collector for the Handler's metrics, to
// register on the embedding server's registry:
//
//	reg.MustRegister(h.Collector())
//
// It reads the Handler's counters at scrape time, so the figures are
// those of Stats (Open, BytesIn, BytesOut; Refused is the sum of the
// refused series, Failed the failed one, Total ok plus failed once dials
// end) and the relay costs nothing per byte. Names (all prefixed
// wsbridge_): connections_open, connections_total{result,reason},
// bytes_total{direction="to_target"|"to_client"}, target_dial_seconds,
// connection_duration_seconds, closes_total{code} and draining. No label
// names a client, token or target. Register one Collector per Handler
// on a registry: two register the same names and the second fails.
func (h *Handler) Collector() prometheus.Collector { return handlerCollector{h} }

type handlerCollector struct{ h *Handler }

func (c handlerCollector) Describe(ch chan<- *prometheus.Desc) {
	c.h.metrics.init()
	for _, d := range []*prometheus.Desc{descOpen, descConns, descBytes, descCloses, descDraining} {
		ch <- d
	}
	c.h.metrics.dial.Describe(ch)
	c.h.metrics.duration.Describe(ch)
}

func (c handlerCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	h.metrics.init()
	s := h.Stats()
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(s.Open))
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(h.metrics.relayed.Load()), "ok", "")
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(h.failed.Load()), "failed", "dial")
	for r := range numRefuseReasons {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(h.refused[r].Load()), "refused", r.String())
	}
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.BytesIn), "to_target")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.BytesOut), "to_client")
	for code, n := range h.metrics.closeCounts() {
		ch <- prometheus.MustNewConstMetric(descCloses, prometheus.CounterValue, float64(n), code)
	}
	draining := 0.0
	if !h.Ready() {
		draining = 1
	}
	ch <- prometheus.MustNewConstMetric(descDraining, prometheus.GaugeValue, draining)
	h.metrics.dial.Collect(ch)
	h.metrics.duration.Collect(ch)
}
