// Draining: telling load balancers to stop sending connections before
// the Handler stops accepting them.

package bridge

// Drain marks the Handler as draining: from now on Ready reports false,
// HealthHandler's /readyz answers 503 and wsbridge_draining is 1, so a
// load balancer checking readiness stops sending new connections. The
// Handler itself goes on accepting and serving connections as before:
// stop accepting with Shutdown once the load balancer has noticed (a few
// of its check intervals later). Drain returns at once, may be called
// more than once and cannot be undone. Shutdown drains too.
//
// The rolling-restart sequence is: Drain; wait the load balancer's
// detection delay; http.Server.Shutdown and Handler.Shutdown with a
// grace period, after which open connections close with 1001 "going
// away" and their clients reconnect through the load balancer to
// another instance.
func (h *Handler) Drain() {
	h.draining.Store(true)
}

// Ready reports whether the Handler wants new connections: true until
// Drain or Shutdown is called.
func (h *Handler) Ready() bool {
	return !h.draining.Load()
}
