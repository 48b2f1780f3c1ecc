package hixietest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Echo sends payloads over a legacy connection to an echo behind addr and
// checks the echo and, when the path asks for seq_num, the sequence numbers
// 0, 1, ... It ends with the closing handshake.
func Echo(t testing.TB, addr string, opts Options, payloads ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatalf("%v %s: %v", opts.Version, opts.Path, err)
	}
	defer c.Close()
	wantSeq := -1
	if strings.Contains(opts.Path, "seq_num") {
		wantSeq = 0
	}
	for _, p := range payloads {
		if err := c.Send(p); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for len(got) < len(p) {
			seq, part, err := c.Recv()
			if err != nil {
				t.Fatalf("%v %s: %v", opts.Version, opts.Path, err)
			}
			if seq != wantSeq {
				t.Fatalf("%v %s: sequence number %d, want %d", opts.Version, opts.Path, seq, wantSeq)
			}
			if wantSeq >= 0 {
				wantSeq++
			}
			got = append(got, part...)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("%v %s: echo of %d bytes differs", opts.Version, opts.Path, len(p))
		}
	}
	if err := c.CloseHandshake(5 * time.Second); err != nil {
		t.Errorf("%v %s: closing handshake: %v", opts.Version, opts.Path, err)
	}
}
