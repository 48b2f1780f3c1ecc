package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsproxy/wsproxy/bridge"
)

// shutdownGrace is how long open connections may take to finish after a
// signal.
const shutdownGrace = 10 * time.Second

// shutdown ends a run, after a signal (reason "") or --timeout and
// --idle-timeout (reason says which). After a signal: the Handler drains
// (/readyz answers 503) and, for drainDelay, the listener keeps accepting
// and serving while load balancers notice; then the listener closes and
// open connections get shutdownGrace before they are closed with 1001.
// --timeout and --idle-timeout let open connections run to their end, as
// websockify's do. Another signal at any point ends the delay and the
// grace at once. It returns when the last connection has ended.
func shutdown(log *slog.Logger, h *bridge.Handler, srv *http.Server, reason string, drainDelay time.Duration) {
	again, stopAgain := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopAgain()
	h.Drain()
	grace := shutdownGrace
	if reason != "" {
		grace = 0
		log.Info("wsbridge: shutting down", "reason", reason, "open", h.Stats().Open)
	} else {
		if drainDelay > 0 {
			log.Info("wsbridge: draining: not ready, still accepting", "drain_delay", drainDelay, "open", h.Stats().Open)
			select {
			case <-time.After(drainDelay):
			case <-again.Done():
			}
		}
		log.Info("wsbridge: shutting down", "grace", grace, "open", h.Stats().Open)
	}
	sctx, cancel := again, context.CancelFunc(func() {})
	if grace > 0 {
		sctx, cancel = context.WithTimeout(again, grace)
	}
	defer cancel()
	_ = srv.Shutdown(sctx) // stops the listener and idle HTTP connections
	if err := h.Shutdown(sctx); err != nil {
		log.Info("wsbridge: closed connections still open at the deadline")
	}
}

// lifetimePoll is how often watchLifetime looks at the open connections.
const lifetimePoll = 100 * time.Millisecond

// watchLifetime implements websockify's --timeout (stop accepting timeout
// after start) and --idle-timeout (stop after idle without any open
// connection): it sends the reason on stop once, or returns when ctx
// ends. Zero durations are off.
func watchLifetime(ctx context.Context, h *bridge.Handler, timeout, idle time.Duration, stop chan<- string) {
	start := time.Now()
	lastBusy := start
	t := time.NewTicker(lifetimePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if h.Stats().Open > 0 {
				lastBusy = now
			}
			switch {
			case timeout > 0 && now.Sub(start) >= timeout:
				stop <- "--timeout reached"
				return
			case idle > 0 && now.Sub(lastBusy) >= idle:
				stop <- "--idle-timeout: no connections"
				return
			}
		}
	}
}
