// Connection slots: the MaxConns limit, the table of live relays, and
// Shutdown, which empties it.

package bridge

import (
	"context"
	"sync"

	"github.com/coder/websocket"
)

// reserve takes a connection slot unless the limit is reached or the
// Handler is shutting down, and otherwise says which.
func (h *Handler) reserve() (refuseReason, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdown {
		return reasonDraining, false
	}
	max := h.MaxConns
	if max == 0 {
		max = DefaultMaxConns
	}
	if max > 0 && h.open.Load() >= int64(max) {
		return reasonLimit, false
	}
	h.open.Add(1)
	h.connsDone.Add(1)
	return 0, true
}

func (h *Handler) release() {
	h.open.Add(-1)
	h.connsDone.Done()
}

func (h *Handler) track(id uint64, rl *relay) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns == nil {
		h.conns = make(map[uint64]*relay)
	}
	h.conns[id] = rl
	return !h.forced
}

func (h *Handler) untrack(id uint64, rl *relay) {
	h.mu.Lock()
	delete(h.conns, id)
	h.mu.Unlock()
	h.bytesIn.Add(rl.fromClient.Load())
	h.bytesOut.Add(rl.toClient.Load())
}

// Shutdown drains (see Drain), stops accepting connections (new requests
// get 503) and waits
// for open ones to end by themselves. When ctx ends first, it closes the
// remaining connections with 1001 "bridge shutting down", waits for their
// relays to finish, and returns ctx's error. Call it after
// http.Server.Shutdown, which does not wait for WebSocket (hijacked)
// connections. Shutdown is final: a Handler does not accept connections
// again.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.Drain()
	h.mu.Lock()
	h.shutdown = true
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		h.connsDone.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	h.forced = true // connections tracked from now on abort themselves
	conns := make([]*relay, 0, len(h.conns))
	for _, rl := range h.conns {
		conns = append(conns, rl)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, rl := range conns {
		wg.Go(func() { rl.abort(websocket.StatusGoingAway, "bridge shutting down", nil) })
	}
	wg.Wait()
	<-done
	return ctx.Err()
}
