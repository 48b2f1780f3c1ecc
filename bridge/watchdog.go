// The heartbeat and the idle timeout of one connection.

package bridge

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// watchdog runs the heartbeat and the idle timeout of one connection on
// timers, so an idle connection costs no goroutine for them: a ping runs
// on its timer's goroutine while it waits for the pong.
type watchdog struct {
	h        *Handler
	rl       *relay
	pinger   pinger
	hb, idle *time.Timer

	mu       sync.Mutex
	stopped  bool
	inflight sync.WaitGroup // callbacks running; stop waits for them
}

// watch starts the heartbeat and idle timers that h's settings ask for.
func (h *Handler) watch(rl *relay) *watchdog {
	w := &watchdog{h: h, rl: rl}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := rl.client.(pinger); ok && h.HeartbeatInterval > 0 {
		w.pinger = p
		w.hb = time.AfterFunc(h.HeartbeatInterval, w.heartbeat)
	}
	if h.IdleTimeout > 0 {
		w.idle = time.AfterFunc(h.IdleTimeout, w.checkIdle)
	}
	return w
}

// enter marks a callback as running, unless the watch has stopped.
func (w *watchdog) enter() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.inflight.Add(1)
	return true
}

// rearm resets t unless the watch has stopped.
func (w *watchdog) rearm(t *time.Timer, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		t.Reset(d)
	}
}

func (w *watchdog) heartbeat() {
	if !w.enter() {
		return
	}
	defer w.inflight.Done()
	timeout := w.h.HeartbeatTimeout
	if timeout <= 0 {
		timeout = DefaultHeartbeatTimeout
	}
	if err := w.pinger.ping(timeout); err != nil {
		w.mu.Lock()
		stopped := w.stopped
		w.mu.Unlock()
		if stopped || errors.Is(err, net.ErrClosed) {
			return
		}
		if !w.rl.writingTarget.Load() {
			w.rl.abort(0, "no answer to ping", fmt.Errorf("heartbeat: dead peer: %w", err))
			return
		}
		// The relay is stuck writing to a target that reads slowly or not
		// at all, so nothing reads the client and its pong cannot be
		// seen: that says nothing about the client. IdleTimeout is what
		// ends a connection whose target stopped reading.
	}
	w.rearm(w.hb, w.h.HeartbeatInterval)
}

// checkIdle aborts the relay when it has been idle for IdleTimeout;
// otherwise it rearms the timer for the rest of the period.
func (w *watchdog) checkIdle() {
	if !w.enter() {
		return
	}
	defer w.inflight.Done()
	idle := time.Since(w.rl.lastActivity())
	if idle >= w.h.IdleTimeout {
		w.rl.abort(websocket.StatusGoingAway, "idle timeout", nil)
		return
	}
	w.rearm(w.idle, w.h.IdleTimeout-idle)
}

// stop ends the watch and waits for a callback in progress (a ping
// returns at once once the connection is closed).
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.hb != nil {
		w.hb.Stop()
	}
	if w.idle != nil {
		w.idle.Stop()
	}
	w.mu.Unlock()
	w.inflight.Wait()
}
