package bridge_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsproxy/wsproxy/bridge"
)

func TestTrafficLegend(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	tl := bridge.NewTrafficLegend(&out)
	tl.FromClient([]byte("RFB 003.008\n"))
	tl.ToClient([]byte("x"))
	tl.ToClient(nil)
	got := strings.TrimPrefix(out.String(), bridge.TrafficLegendHeader)
	if got != "}>{<{<" {
		t.Errorf("legend %q", got)
	}
	for _, c := range []string{"}", "{", ">", "<"} {
		if !strings.Contains(bridge.TrafficLegendHeader, "    "+c+"  - ") {
			t.Errorf("header does not explain %q", c)
		}
	}
}
