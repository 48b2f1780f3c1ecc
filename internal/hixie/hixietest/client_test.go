package hixietest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestClientAgainstWebsocketDriver validates the test client against a
// third-party Hixie server: npm websocket-driver with allowDrafts.
func TestClientAgainstWebsocketDriver(t *testing.T) {
	t.Parallel()
	addr := peertest.HixieEchoServer(t)
	for _, v := range []hixie.Version{hixie.Hixie75, hixie.Hixie76} {
		t.Run(v.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := hixietest.Dial(ctx, addr, hixietest.Options{Version: v, Path: "/echo?x=1"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, p := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0, 0xff, 0x80}, 10000)} {
				if err := c.Send(p); err != nil {
					t.Fatal(err)
				}
				seq, got, err := c.Recv()
				if err != nil || seq != -1 || !bytes.Equal(got, p) {
					t.Fatalf("echo of %d bytes: seq %d, %d bytes, %v", len(p), seq, len(got), err)
				}
			}
			if err := c.CloseHandshake(5 * time.Second); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

func TestNewKeysAreValid(t *testing.T) {
	t.Parallel()
	// The client's keys obey draft-76: the server side accepts them.
	for i := 0; i < 200; i++ {
		for _, k := range []string{hixietest.NewKeyForTest()} {
			if strings.HasPrefix(k, " ") || strings.HasSuffix(k, " ") {
				t.Fatalf("key %q starts or ends with a space", k)
			}
			if _, err := hixie.Answer76(k, k, make([]byte, 8)); err != nil {
				t.Fatalf("key %q: %v", k, err)
			}
		}
	}
}
