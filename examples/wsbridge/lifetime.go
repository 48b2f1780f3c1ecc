package main

import (
	"context"
	"time"

	"github.com/wsproxy/wsproxy/bridge"
)

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
