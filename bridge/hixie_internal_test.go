package bridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// hixieEchoBridge serves acceptHixie with a plain two-way copy to a TCP
// echo server, the adapter alone without the Handler around it.
func hixieEchoBridge(t *testing.T, maxFrame int) (addr string, errs chan error) {
	t.Helper()
	echo := peertest.EchoServer(t)
	errs = make(chan error, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isHixie(r) {
			http.Error(w, "not hixie", http.StatusBadRequest)
			return
		}
		c, err := acceptHixie(w, r, maxFrame)
		if err != nil {
			errs <- err
			return
		}
		defer c.closeWith(0, "")
		tc, err := net.Dial("tcp", echo)
		if err != nil {
			errs <- err
			return
		}
		defer tc.Close()
		done := make(chan error, 1)
		go func() { _, err := io.Copy(c, tc); c.closeWith(websocket.StatusNormalClosure, ""); done <- err }()
		_, err = io.Copy(tc, c)
		tc.(*net.TCPConn).CloseWrite()
		<-done
		errs <- err
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), errs
}

func TestHixieAdapterEcho(t *testing.T) {
	t.Parallel()
	addr, errs := hixieEchoBridge(t, 0)
	for _, v := range []hixie.Version{hixie.Hixie75, hixie.Hixie76} {
		for _, path := range []string{"/", "/?seq_num", "/?token=x&seq_num=1"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := hixietest.Dial(ctx, addr, hixietest.Options{Version: v, Path: path, Protocol: "base64"})
			cancel()
			if err != nil {
				t.Fatalf("%v %s: %v", v, path, err)
			}
			if got := c.Response.Header.Get(map[hixie.Version]string{hixie.Hixie75: "WebSocket-Protocol", hixie.Hixie76: "Sec-WebSocket-Protocol"}[v]); got != "base64" {
				t.Errorf("%v: protocol answer %q", v, got)
			}
			wantSeq := -1
			if strings.Contains(path, "seq_num") {
				wantSeq = 0
			}
			for i, p := range [][]byte{[]byte("hello"), bytes.Repeat([]byte{0, 0xff}, 3000)} {
				if err := c.Send(p); err != nil {
					t.Fatal(err)
				}
				var got []byte
				for len(got) < len(p) {
					seq, part, err := c.Recv()
					if err != nil {
						t.Fatalf("%v %s frame %d: %v", v, path, i, err)
					}
					if seq != wantSeq {
						t.Fatalf("%v %s: seq %d, want %d", v, path, seq, wantSeq)
					}
					if wantSeq >= 0 {
						wantSeq++
					}
					got = append(got, part...)
				}
				if !bytes.Equal(got, p) {
					t.Fatalf("%v %s: echo differs", v, path)
				}
			}
			if err := c.CloseHandshake(5 * time.Second); err != nil {
				t.Errorf("%v: close: %v", v, err)
			}
			if err := <-errs; err != nil {
				t.Errorf("%v %s: bridge side: %v", v, path, err)
			}
		}
	}
}

func TestHixieAdapterRejects(t *testing.T) {
	t.Parallel()
	addr, errs := hixieEchoBridge(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := hixietest.Dial(ctx, addr, hixietest.Options{Protocol: "binary"})
	var he *hixietest.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 400 || !strings.Contains(he.Body, "base64 only") {
		t.Errorf("binary offer: %v", err)
	}
	<-errs

	c, err := hixietest.Dial(ctx, addr, hixietest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send([]byte("123456789")); err != nil { // over the 8-byte cap
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, hixie.ErrFrameTooLarge) {
		t.Errorf("oversized frame: bridge error %v", err)
	}

	// Keys that break the draft's rules get 400 before any hijack.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key1: 12345\r\nSec-WebSocket-Key2: 1 2\r\n\r\n12345678")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := io.ReadAll(io.LimitReader(conn, 12))
	if string(line) != "HTTP/1.1 400" {
		t.Errorf("key without spaces answered %q", line)
	}
	if err := <-errs; !errors.Is(err, hixie.ErrBadHandshake) {
		t.Errorf("bad key: %v", err)
	}
}
