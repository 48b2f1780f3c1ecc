// Operations: log format, and the metrics listener serving /metrics,
// /healthz and /readyz.

package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsproxy/wsproxy/bridge"
)

// newLogger returns the slog logger --log-format asks for: "json" writes
// one JSON object per line, anything else key=value text.
func newLogger(format string, out io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// metricsServer is the --metrics-listen listener.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
}

// startMetrics listens on addr and serves /metrics (the Handler's
// collector with the Go runtime and process collectors, on a registry of
// its own), /healthz and /readyz (bridge.Handler.HealthHandler). It runs
// until stop, so that /metrics and /readyz answer while the bridge
// drains.
func startMetrics(addr string, h *bridge.Handler, log *slog.Logger) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		h.Collector(),
	)
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errLog, Timeout: 10 * time.Second}))
	health := h.HealthHandler()
	mux.Handle("/healthz", health)
	mux.Handle("/readyz", health)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			ErrorLog:          errLog,
		},
		done: make(chan struct{}),
	}
	log.Info("wsbridge: metrics listening", "addr", l.Addr().String(), "paths", "/metrics /healthz /readyz")
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("wsbridge: metrics listener failed", "err", err)
		}
	}()
	return m, nil
}

// stop closes the listener and its connections and waits for Serve to
// return. A nil server is a no-op.
func (m *metricsServer) stop() {
	if m == nil {
		return
	}
	_ = m.srv.Close()
	<-m.done
}
