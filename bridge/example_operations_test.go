package bridge_test

import (
	"context"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsproxy/wsproxy/bridge"
)

// Running the bridge behind a load balancer: metrics and health checks on
// a listener of their own, and a rolling restart on SIGTERM (what
// wsbridge --metrics-listen and --drain-delay do; see docs/operations.md).
func ExampleHandler_Collector() {
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: "127.0.0.1:5900"}}

	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ops := http.NewServeMux()
	ops.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ops.Handle("/healthz", h.HealthHandler())
	ops.Handle("/readyz", h.HealthHandler())
	go http.ListenAndServe("127.0.0.1:9100", ops)

	srv := &http.Server{Addr: "127.0.0.1:6080", Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go srv.ListenAndServe()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	h.Drain()                   // /readyz answers 503: the load balancer stops sending clients
	time.Sleep(5 * time.Second) // while it notices, new connections are still served
	grace, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(grace) // stop accepting
	_ = h.Shutdown(grace)   // wait for open connections, then close the rest with 1001
}
