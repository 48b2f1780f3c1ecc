package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// runDemo starts, on loopback, a WebSocket echo server and a CONNECT proxy
// that requires Basic credentials, then dials through the proxy the way a
// program behind a corporate proxy would, printing each step.
func runDemo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	step := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	echo, err := startEcho()
	if err != nil {
		return err
	}
	defer echo.Close()
	step("1. WebSocket echo server on ws://%s/echo", echo.Addr())

	secret := make([]byte, 8)
	_, _ = rand.Read(secret)
	password := hex.EncodeToString(secret)
	proxy, err := proxytest.Start(proxytest.Config{Username: "alice", Password: password, Realm: "demo"})
	if err != nil {
		return err
	}
	defer proxy.Close()
	step("2. HTTP CONNECT proxy on %s, requiring Basic credentials for user alice", proxy.URL)

	target := "ws://" + echo.Addr().String() + "/echo"
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(proxy.URL)}
	step("3. Dial %s through the proxy without credentials:", target)
	_, _, err = d.Dial(ctx, target, nil)
	if !errors.Is(err, wsproxy.ErrProxyAuthRequired) {
		return fmt.Errorf("expected a 407 error, got %v", err)
	}
	step("   refused as expected: %v", err)

	step("4. Dial again with a credentials callback (trace of the exchange, password redacted):")
	d.Logf = func(format string, args ...any) { fmt.Fprintf(out, "     "+format+"\n", args...) }
	d.Credentials = func(_ context.Context, r *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
		fmt.Fprintf(out, "     credentials asked for: scheme %s, realm %q, proxy %s\n", r.Scheme, r.Realm, r.Proxy)
		return &wsproxy.Credentials{Username: "alice", Password: password}, nil
	}
	before := proxy.Accepts()
	c, _, err := d.Dial(ctx, target, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	step("   connected; the 407 and the retry used %d TCP connection(s) to the proxy", proxy.Accepts()-before)

	for _, msg := range []string{"hello through the proxy", "second message"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			return err
		}
		step("5. sent %q, echo server answered %q", msg, got)
		if string(got) != msg {
			return errors.New("echo mismatch")
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "demo done"); err != nil {
		return err
	}
	step("6. closed normally. The proxy saw %d CONNECT requests and no GET: demo OK", len(proxy.Requests()))
	return nil
}

// echoServer is a loopback WebSocket echo server.
type echoServer struct {
	ln  net.Listener
	srv *http.Server
}

func startEcho() (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})}
	go func() { _ = srv.Serve(ln) }()
	return &echoServer{ln: ln, srv: srv}, nil
}

func (e *echoServer) Addr() net.Addr { return e.ln.Addr() }

func (e *echoServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	_ = e.srv.Close()
}
