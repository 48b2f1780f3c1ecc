// Health checks for load balancers and orchestrators.

package bridge

import (
	"net/http"
	"strings"
)

// HealthHandler returns an http.Handler answering health checks, to mount
// on a listener of its own or next to the Handler:
//
//   - a path ending in /healthz: 200 "ok" while the process serves
//     (liveness);
//   - a path ending in /readyz: 200 "ready" until Drain or Shutdown is
//     called, then 503 "draining" (readiness: a load balancer stops
//     sending new connections).
//
// Other paths get 404. Only GET and HEAD are answered (405 otherwise).
// The answers carry Cache-Control: no-store.
func (h *Handler) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		healthz := strings.HasSuffix(r.URL.Path, "/healthz")
		readyz := strings.HasSuffix(r.URL.Path, "/readyz")
		if !healthz && !readyz {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case healthz:
			_, _ = w.Write([]byte("ok\n"))
		case h.Ready():
			_, _ = w.Write([]byte("ready\n"))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("draining\n"))
		}
	})
}
