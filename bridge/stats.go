// Stats: the Handler's counters and their one-line form for logs.

package bridge

import "strconv"

// Stats is a snapshot of a Handler's counters.
type Stats struct {
	Open     int64  // connections being served now (handshake, dial or relay)
	Total    uint64 // connections accepted (WebSocket opened) since start
	Refused  uint64 // requests refused before the relay (auth, origin, limits, draining, unknown targets, failed handshakes); by reason in Collector
	Failed   uint64 // connections whose target could not be dialed
	BytesIn  int64  // payload bytes from clients to targets, open connections included
	BytesOut int64  // payload bytes from targets to clients, open connections included
}

// Stats returns the current counters.
func (h *Handler) Stats() Stats {
	s := Stats{
		Open:     h.open.Load(),
		Total:    h.total.Load(),
		Refused:  h.refused.sum(),
		Failed:   h.failed.Load(),
		BytesIn:  h.bytesIn.Load(),
		BytesOut: h.bytesOut.Load(),
	}
	h.mu.Lock()
	for _, r := range h.conns {
		s.BytesIn += r.fromClient.Load()
		s.BytesOut += r.toClient.Load()
	}
	h.mu.Unlock()
	return s
}

// String returns a short description for logs.
func (s Stats) String() string {
	return "open=" + strconv.FormatInt(s.Open, 10) + " total=" + strconv.FormatUint(s.Total, 10) +
		" refused=" + strconv.FormatUint(s.Refused, 10) + " failed=" + strconv.FormatUint(s.Failed, 10) +
		" in=" + strconv.FormatInt(s.BytesIn, 10) + " out=" + strconv.FormatInt(s.BytesOut, 10)
}
