package bridge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

func hostOf(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "ws://"), "wss://")
}

// TestHixieThroughHandler: Hixie-75 and -76 through the Handler to a TCP
// echo, with and without seq_num.
func TestHixieThroughHandler(t *testing.T) {
	t.Parallel()
	url, logs := echoBridge(t, &bridge.Handler{})
	big := bytes.Repeat([]byte{0, 0xff, 'x', '\n'}, 50_000) // several relay buffers
	for _, v := range []hixie.Version{hixie.Hixie75, hixie.Hixie76} {
		for _, path := range []string{"/", "/?seq_num", "/websockify?token=a&seq_num=1"} {
			hixietest.Echo(t, hostOf(url), hixietest.Options{Version: v, Path: path, Protocol: "base64"},
				[]byte("RFB 003.008\n"), big)
		}
	}
	for _, want := range []string{"protocol=hixie-75", "protocol=hixie-76", "subprotocol=base64"} {
		if !waitFor(func() bool { return strings.Contains(logs.String(), want) }) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestHixieTargetCloses: a target that says goodbye and closes ends a
// Hixie-76 client with the closing handshake after the last bytes.
func TestHixieTargetCloses(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("bye"))
		c.Close()
	}()
	url, _ := serve(t, &bridge.Handler{Resolver: bridge.FixedTarget{Address: l.Addr().String()}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hixietest.Dial(ctx, hostOf(url), hixietest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := c.Recv(); err != nil || string(p) != "bye" {
		t.Fatalf("got %q, %v", p, err)
	}
	if _, err := c.ReadText(); !errors.Is(err, hixietest.ErrClosed) {
		t.Fatalf("after the target closed: %v, want the closing handshake", err)
	}
	_, _ = c.Write([]byte{0xFF, 0x00}) // answer it, as a client does
}

// TestHixieRefusals: the Handler's checks apply to legacy clients too, and
// a legacy-specific failure is a 400 with its reason.
func TestHixieRefusals(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		opts   hixietest.Options
		status int
		body   string
	}{
		{"cross-site origin", hixietest.Options{Origin: "http://evil.example"}, http.StatusForbidden, "origin"},
		{"binary subprotocol", hixietest.Options{Protocol: "binary"}, http.StatusBadRequest, "base64 only"},
	} {
		_, err := hixietest.Dial(ctx, hostOf(url), tc.opts)
		var he *hixietest.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != tc.status || !strings.Contains(he.Body, tc.body) {
			t.Errorf("%s: %v, want %d mentioning %q", tc.name, err, tc.status, tc.body)
		}
	}
	// The Origin of a same-host page is fine (the default policy).
	hixietest.Echo(t, hostOf(url), hixietest.Options{Origin: "http://" + hostOf(url)}, []byte("ok"))
}

// TestBase64SeqNum: RFC 6455 base64 mode numbers its messages under
// seq_num; binary mode ignores the flag.
func TestBase64SeqNum(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(t, url+"/?seq_num", &websocket.DialOptions{Subprotocols: []string{"base64"}})
	for i, p := range []string{"one", "two", "three"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(encodeB64([]byte(p)))); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte{byte('0' + i), ':'}
		want = append(want, encodeB64([]byte(p))...)
		if !bytes.Equal(msg, want) {
			t.Errorf("message %d = %q, want %q", i, msg, want)
		}
	}
	b := dial(t, url+"/?seq_num", &websocket.DialOptions{Subprotocols: []string{"binary"}})
	_ = b.Write(ctx, websocket.MessageBinary, []byte("raw"))
	if _, msg, err := b.Read(ctx); err != nil || string(msg) != "raw" {
		t.Errorf("binary mode under seq_num: %q, %v", msg, err)
	}
}

// TestLegacyOnePortWithHandler: the Handler behind the sniffing Listener
// serves wss://, ws://, Hixie over TLS (Location says wss://) and the
// Flash policy on one port.
func TestLegacyOnePortWithHandler(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	l, err := bridge.Listen("tcp", "127.0.0.1:0", &bridge.ListenerOptions{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(t)}, Logger: logger}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
		<-done
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})
	addr := l.Addr().String()
	tlsConf := &tls.Config{RootCAs: cert.Pool}
	hixietest.Echo(t, addr, hixietest.Options{Version: hixie.Hixie76, Path: "/?seq_num", TLS: tlsConf}, []byte("over tls"))
	hixietest.Echo(t, addr, hixietest.Options{Version: hixie.Hixie75, TLS: tlsConf}, []byte("over tls"))
	hixietest.Echo(t, addr, hixietest.Options{Version: hixie.Hixie76}, []byte("plain"))
	for _, u := range []string{"wss://" + addr + "/", "ws://" + addr + "/"} {
		client := tlsClient(cert)
		if err := wsEcho(t, u, client); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if got := policyRequest(t, addr); string(got) != defaultPolicy {
		t.Errorf("policy %q", got)
	}
}

// TestRecordThroughHandler records an RFC 6455 and a Hixie session via
// Handler.OpenTap and reads both files back by noVNC's rules.
func TestRecordThroughHandler(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "rec")
	rec := bridge.NewRecorder(base, 0)
	var legend logBuffer
	tl := bridge.NewTrafficLegend(&legend)
	url, _ := echoBridge(t, &bridge.Handler{OpenTap: func(ci bridge.ConnInfo) (bridge.Tap, error) {
		r, err := rec.OpenTap(ci)
		if err != nil {
			return nil, err
		}
		return bridge.Taps(r, tl), nil
	}})
	payload := append([]byte("RFB 003.008\n"), allBytes()...)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(t, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err := c.Write(ctx, websocket.MessageBinary, payload); err != nil {
		t.Fatal(err)
	}
	readN(t, c, len(payload), false)
	c.Close(websocket.StatusNormalClosure, "")

	hixietest.Echo(t, hostOf(url), hixietest.Options{Version: hixie.Hixie76}, payload)

	for _, path := range []string{base + ".1", base + ".2"} {
		want := []sent{{true, payload}, {false, payload}}
		if !waitFor(func() bool { return len(readRecording(t, path)) >= 2 }) {
			t.Fatalf("%s: frames missing", path)
		}
		checkFrames(t, path+" go reader", mergeFrames(readRecording(t, path)), want)
		checkFrames(t, path+" node reader", mergeFrames(readRecordingNode(t, path)), want)
	}
	if got := strings.TrimPrefix(legend.String(), bridge.TrafficLegendHeader); !strings.HasPrefix(got, "}>{<") {
		t.Errorf("traffic legend %q", got)
	}
}

// mergeFrames joins consecutive frames of one direction: the relay may
// split a payload over several reads.
func mergeFrames(fs []recordedFrame) []recordedFrame {
	var out []recordedFrame
	for _, f := range fs {
		if n := len(out); n > 0 && out[n-1].FromClient == f.FromClient {
			out[n-1].Hex += f.Hex
			continue
		}
		out = append(out, f)
	}
	return out
}

// TestHixieClientCloseAnswered: the bridge answers a Hixie-76 client's
// closing handshake with its own before closing the connection.
func TestHixieClientCloseAnswered(t *testing.T) {
	t.Parallel()
	url, _ := echoBridge(t, &bridge.Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hixietest.Dial(ctx, hostOf(url), hixietest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Recv(); err != nil || string(p) != "x" {
		t.Fatalf("echo %q, %v", p, err)
	}
	if _, err := c.Write([]byte{0xFF, 0x00}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.ReadText(); !errors.Is(err, hixietest.ErrClosed) {
		t.Fatalf("after the client's closing handshake: %v, want the bridge's answer", err)
	}
}
