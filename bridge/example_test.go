package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/bridge"
)

// Mount the bridge on an existing mux next to the application's own
// handlers; here it relays to a VNC server on the same machine.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/websockify", &bridge.Handler{
		Resolver:    bridge.FixedTarget{Address: "127.0.0.1:5900"},
		IdleTimeout: 30 * time.Minute,
	})
	srv := &http.Server{Addr: "127.0.0.1:6080", Handler: mux}
	_ = srv // srv.ListenAndServe()
}

// Tokens choose the target: ?token=NAME is looked up in a websockify token
// file, and only targets in the allow-list can be reached.
func ExampleTokenResolver() {
	allow, err := bridge.ParseAllowList("10.0.0.0/8:5900-5999")
	if err != nil {
		log.Fatal(err)
	}
	h := &bridge.Handler{Resolver: &bridge.TokenResolver{
		Store: &bridge.TokenFile{Path: "/etc/wsbridge/tokens"},
		Allow: allow,
	}}
	http.Handle("/websockify", h)
}

// A complete round trip: a TCP service, the bridge in front of it, and a
// WebSocket client.
func ExampleHandler_echo() {
	// The TCP service: it greets and closes.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("RFB 003.008\n"))
			c.Close()
		}
	}()

	h := &bridge.Handler{
		Resolver: bridge.FixedTarget{Address: l.Addr().String()},
		Logger:   slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		log.Fatal(err)
	}
	_, msg, _ := c.Read(ctx)
	fmt.Printf("%s subprotocol %q: %q\n", "got", c.Subprotocol(), msg)
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Reason)
	}
	h.Shutdown(ctx)
	// Output:
	// got subprotocol "binary": "RFB 003.008\n"
	// StatusNormalClosure target closed
}
