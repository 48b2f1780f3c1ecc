package bridge

import (
	"errors"
	"io"
	"sync"
)

// TrafficLegendHeader is printed once when traffic display starts; it
// explains the characters TrafficLegend writes, as websockify's --traffic
// did.
const TrafficLegendHeader = "Traffic Legend:\n" +
	"    }  - Client receive\n" +
	"    {  - Target receive\n" +
	"    >  - Target send\n" +
	"    <  - Client send\n"

// TrafficLegend writes websockify's --traffic display: one character per
// frame and direction, with no newlines, so the rhythm of a session shows
// at a glance on a terminal. A frame from the client prints "}" (client
// receive) then ">" (target send); data from the target prints "{"
// (target receive) then "<" (client send). Safe for concurrent use; write
// errors are ignored (the display must never break a relay).
type TrafficLegend struct {
	mu sync.Mutex
	w  io.Writer
}

// NewTrafficLegend returns a TrafficLegend writing to w (os.Stderr in
// wsbridge) and prints TrafficLegendHeader first.
func NewTrafficLegend(w io.Writer) *TrafficLegend {
	_, _ = io.WriteString(w, TrafficLegendHeader)
	return &TrafficLegend{w: w}
}

// FromClient notes a frame received from the client and relayed to the
// target.
func (t *TrafficLegend) FromClient([]byte) { t.write("}>") }

// ToClient notes data received from the target and sent to the client.
func (t *TrafficLegend) ToClient([]byte) { t.write("{<") }

func (t *TrafficLegend) write(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = io.WriteString(t.w, s)
}

// Taps combines taps into one for Handler.OpenTap: each call goes to every
// non-nil tap in order, and Close closes those that are io.Closers. It
// returns nil when no tap is left.
func Taps(taps ...Tap) Tap {
	var m multiTap
	for _, t := range taps {
		if t != nil {
			m = append(m, t)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

type multiTap []Tap

func (m multiTap) FromClient(p []byte) {
	for _, t := range m {
		t.FromClient(p)
	}
}

func (m multiTap) ToClient(p []byte) {
	for _, t := range m {
		t.ToClient(p)
	}
}

func (m multiTap) Close() error {
	var errs []error
	for _, t := range m {
		if c, ok := t.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
