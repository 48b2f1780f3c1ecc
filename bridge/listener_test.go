package bridge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// logBuffer collects a Listener's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits until the log holds substr.
func (b *logBuffer) waitLog(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q; log:\n%s", substr, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sniffServer serves, on one bridge.Listener: "/" answering which
// transport the request came over, and "/ws" a WebSocket echo.
func sniffServer(t *testing.T, opts bridge.ListenerOptions) (addr string, log *logBuffer) {
	t.Helper()
	log = &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := bridge.Listen("tcp", "127.0.0.1:0", &opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			fmt.Fprint(w, "tls")
		} else {
			fmt.Fprint(w, "plain")
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		if t.Failed() {
			t.Logf("listener log:\n%s", log)
		}
	})
	return l.Addr().String(), log
}

func httpGet(t *testing.T, client *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func tlsClient(cert *peertest.Cert) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}, DisableKeepAlives: true},
	}
}

var plainClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func wsEcho(t *testing.T, url string, client *http.Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	want := []byte("one port \x00\xff")
	if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
		return err
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo %q, want %q", got, want)
	}
	return c.Close(websocket.StatusNormalClosure, "")
}

func policyRequest(t *testing.T, addr string) []byte { return policyRequestThen(t, addr, "") }

// policyRequestThen sends the Flash policy request followed by more.
func policyRequestThen(t *testing.T, addr, more string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("<policy-file-request/>\x00" + more)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("policy answer: %v", err)
	}
	return got
}

const defaultPolicy = `<cross-domain-policy><allow-access-from domain="*" to-ports="*" /></cross-domain-policy>` + "\x00"

func TestListenerOnePort(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	addr, _ := sniffServer(t, bridge.ListenerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}})

	if got, err := httpGet(t, tlsClient(cert), "https://"+addr+"/"); err != nil || got != "tls" {
		t.Errorf("https: %q, %v", got, err)
	}
	if got, err := httpGet(t, plainClient, "http://"+addr+"/"); err != nil || got != "plain" {
		t.Errorf("http: %q, %v", got, err)
	}
	if err := wsEcho(t, "wss://"+addr+"/ws", tlsClient(cert)); err != nil {
		t.Errorf("wss: %v", err)
	}
	if err := wsEcho(t, "ws://"+addr+"/ws", plainClient); err != nil {
		t.Errorf("ws: %v", err)
	}
	if got := policyRequest(t, addr); string(got) != defaultPolicy {
		t.Errorf("policy answer %q, want %q", got, defaultPolicy)
	}
	// A request that merely starts like the policy request is plain HTTP.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "<policy-file-request!>\r\n\r\n")
	line, _ := io.ReadAll(io.LimitReader(c, 12))
	if string(line) != "HTTP/1.1 400" {
		t.Errorf("near-policy request answered %q, want an HTTP 400", line)
	}
}

func TestListenerSSLOnly(t *testing.T) {
	t.Parallel()
	cert := peertest.SelfSigned(t)
	addr, log := sniffServer(t, bridge.ListenerOptions{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		SSLOnly:   true,
	})
	if got, err := httpGet(t, plainClient, "http://"+addr+"/"); err == nil {
		t.Errorf("plain request served under SSLOnly: %q", got)
	}
	log.waitLog(t, "plain connection refused: only TLS is accepted (--ssl-only)")
	if err := wsEcho(t, "ws://"+addr+"/ws", plainClient); err == nil {
		t.Error("ws:// accepted under SSLOnly")
	}
	if got, err := httpGet(t, tlsClient(cert), "https://"+addr+"/"); err != nil || got != "tls" {
		t.Errorf("https: %q, %v", got, err)
	}
	if err := wsEcho(t, "wss://"+addr+"/ws", tlsClient(cert)); err != nil {
		t.Errorf("wss: %v", err)
	}
	if got := policyRequest(t, addr); string(got) != defaultPolicy {
		t.Errorf("policy answer %q under SSLOnly", got)
	}
}

func TestListenerTLSErrorsAreLogged(t *testing.T) {
	t.Parallel()
	t.Run("no certificate", func(t *testing.T) {
		t.Parallel()
		addr, log := sniffServer(t, bridge.ListenerOptions{})
		cert := peertest.SelfSigned(t)
		if _, err := httpGet(t, tlsClient(cert), "https://"+addr+"/"); err == nil {
			t.Error("TLS served without a certificate")
		}
		log.waitLog(t, "no certificate configured")
		if got, err := httpGet(t, plainClient, "http://"+addr+"/"); err != nil || got != "plain" {
			t.Errorf("http: %q, %v", got, err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		t.Parallel()
		cert := peertest.SelfSigned(t)
		addr, log := sniffServer(t, bridge.ListenerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}})
		other := peertest.SelfSigned(t)
		if _, err := httpGet(t, tlsClient(other), "https://"+addr+"/"); err == nil {
			t.Error("client trusted a certificate it should not")
		}
		log.waitLog(t, "TLS handshake failed")
	})
	t.Run("SSLv2-style hello", func(t *testing.T) {
		t.Parallel()
		cert := peertest.SelfSigned(t)
		addr, log := sniffServer(t, bridge.ListenerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}})
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte{0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15})
		log.waitLog(t, "TLS handshake failed")
	})
}

func TestListenerPeekTimeout(t *testing.T) {
	t.Parallel()
	addr, log := sniffServer(t, bridge.ListenerOptions{PeekTimeout: 200 * time.Millisecond, MaxPending: 1})
	for _, first := range []string{"", "<policy-file"} {
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		fmt.Fprint(silent, first)
		start := time.Now()
		// The only slot is held by the silent client: this request is
		// served once the peek timeout frees it.
		if got, err := httpGet(t, plainClient, "http://"+addr+"/"); err != nil || got != "plain" {
			t.Errorf("http after a silent client: %q, %v", got, err)
		}
		_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("silent client (sent %q): read %d, %v; want the connection closed", first, n, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("silent client held for %v", d)
		}
	}
	log.waitLog(t, "connection closed before its first bytes")
}

func TestListenerPolicyOptions(t *testing.T) {
	t.Parallel()
	addr, _ := sniffServer(t, bridge.ListenerOptions{FlashPolicy: &bridge.FlashPolicy{
		Domains: []string{"vnc.example.com", "*.example.org"}, Ports: "5900-5910,6080",
	}})
	want := `<cross-domain-policy>` +
		`<allow-access-from domain="vnc.example.com" to-ports="5900-5910,6080" />` +
		`<allow-access-from domain="*.example.org" to-ports="5900-5910,6080" />` +
		`</cross-domain-policy>` + "\x00"
	if got := policyRequest(t, addr); string(got) != want {
		t.Errorf("policy %q, want %q", got, want)
	}

	off, _ := sniffServer(t, bridge.ListenerOptions{DisableFlashPolicy: true})
	// The line end makes the HTTP server answer the malformed request.
	if got := policyRequestThen(t, off, "\r\n\r\n"); !bytes.HasPrefix(got, []byte("HTTP/1.1 400")) {
		t.Errorf("disabled policy answered %q, want HTTP 400 from the server", got)
	}
}

func TestFlashPolicyBytes(t *testing.T) {
	t.Parallel()
	var zero *bridge.FlashPolicy
	for _, p := range []*bridge.FlashPolicy{zero, {}, {Domains: []string{"*"}, Ports: "*"}} {
		got, err := p.Bytes()
		if err != nil || string(got) != defaultPolicy {
			t.Errorf("%+v: %q, %v", p, got, err)
		}
	}
	for _, p := range []bridge.FlashPolicy{
		{Domains: []string{`evil" to-ports="*`}},
		{Domains: []string{""}},
		{Ports: "80/><x"},
	} {
		if _, err := p.Bytes(); err == nil {
			t.Errorf("%+v accepted", p)
		}
		if _, err := bridge.NewListener(nil, &bridge.ListenerOptions{FlashPolicy: &p}); err == nil {
			t.Errorf("NewListener accepted %+v", p)
		}
	}
}

func TestListenerCloseWithPendingConnections(t *testing.T) {
	t.Parallel()
	l, err := bridge.Listen("tcp", "127.0.0.1:0", &bridge.ListenerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ready, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	fmt.Fprint(ready, "GET / HTTP/1.1\r\n") // classified, never accepted
	time.Sleep(100 * time.Millisecond)

	accepted := make(chan error, 1)
	go func() {
		// The first Accept takes the classified connection.
		c, err := l.Accept()
		if err == nil {
			c.Close()
			_, err = l.Accept()
		}
		accepted <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("pending connection not closed by Close: %v", err)
	}
}

// TestListenerPeekedBytesAndNetConn checks that a plain connection replays
// the peeked bytes and exposes the socket.
func TestListenerPeekedBytesAndNetConn(t *testing.T) {
	t.Parallel()
	l, err := bridge.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "<policy-file-requesX and more")
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn); !ok {
		t.Error("NetConn is not the TCP connection")
	}
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(io.LimitReader(s, int64(len("<policy-file-requesX and more"))))
	if string(got) != "<policy-file-requesX and more" {
		t.Errorf("read %q", got)
	}
}
