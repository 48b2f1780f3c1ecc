package main

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestPrometheusScrapesTwoBridges: a real Prometheus scrapes two wsbridge
// processes, each behind its own HAProxy (send-proxy-v2, as in
// production, so the PROXY protocol path is the one counted); its query
// API gives the open connections and the bytes the clients sent, summed
// over both.
func TestPrometheusScrapesTwoBridges(t *testing.T) {
	t.Parallel()
	echo := peertest.EchoServer(t)
	args := append([]string{echo}, bridgeProxyProtocolArgs...)
	bridges := []*bridgeProc{startBridgeProc(t, "wsbridge-a", args...), startBridgeProc(t, "wsbridge-b", args...)}
	fronts := []string{peertest.HAProxySendProxy(t, bridges[0].addr, 2), peertest.HAProxySendProxy(t, bridges[1].addr, 2)}
	prom := peertest.StartPrometheus(t, bridges[0].metrics, bridges[1].metrics)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Three clients stay open on a, two on b; one more on a sends and
	// leaves: its bytes still count.
	plan := []struct {
		bridge int
		size   int
		stay   bool
	}{{0, 1000, true}, {0, 70000, true}, {0, 5, true}, {1, 300000, true}, {1, 12345, true}, {0, 4096, false}}
	sent, open := 0, 0
	for _, p := range plan {
		c, _, err := websocket.Dial(ctx, "ws://"+fronts[p.bridge]+"/", nil)
		require.NoError(t, err)
		c.SetReadLimit(-1)
		payload := make([]byte, p.size)
		for i := range payload {
			payload[i] = byte(i*7 + p.size)
		}
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, payload))
		var got []byte
		for len(got) < p.size {
			_, m, err := c.Read(ctx)
			require.NoError(t, err)
			got = append(got, m...)
		}
		require.Equal(t, payload, got)
		sent += p.size
		if p.stay {
			open++
			defer c.CloseNow()
		} else {
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		}
	}

	queries := map[string]float64{
		`count(up{job="wsbridge"} == 1)`:                           2,
		`sum(wsbridge_connections_open)`:                           float64(open),
		`sum(wsbridge_bytes_total{direction="to_target"})`:         float64(sent),
		`sum(wsbridge_bytes_total{direction="to_client"})`:         float64(sent),
		`sum(wsbridge_connections_total{result="ok"})`:             float64(len(plan)),
		`sum(wsbridge_closes_total{code="1000"})`:                  1,
		`sum(wsbridge_connection_duration_seconds_count)`:          1,
		`count(go_goroutines{job="wsbridge"})`:                     2,
		`count(process_resident_memory_bytes{job="wsbridge"} > 0)`: 2,
	}
	got := map[string]float64{}
	require.Eventually(t, func() bool {
		for q, want := range queries {
			v, ok := prom.Query(t, q)
			got[q] = v
			if !ok || v != want {
				return false
			}
		}
		return true
	}, 20*time.Second, 250*time.Millisecond, "Prometheus's figures %v, want %v", got, queries)
	t.Logf("Prometheus: %d open connections over 2 bridges, %d bytes each way, as the clients sent", open, sent)
}
