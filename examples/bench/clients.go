//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/wstest"
)

// A flavor is one way of reaching the TCP echo: straight through the raw
// relay, or through a WebSocket server with one of its framings. Every
// flavor gives the scenarios the same byte stream.
type flavor struct {
	name string
	dial func(ctx context.Context, addr string) (io.ReadWriteCloser, error)
}

var (
	rawTCP = flavor{"raw TCP", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
	wsBinary = flavor{"binary", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		c, err := dialWS(ctx, addr, "binary")
		if err != nil {
			return nil, err
		}
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}}
	wsBase64 = flavor{"base64", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		c, err := dialWS(ctx, addr, "base64")
		if err != nil {
			return nil, err
		}
		return &wstest.Base64Conn{C: c}, nil
	}}
)

// benchHTTPClient keeps handshakes off any proxy settings of the machine.
var benchHTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

func dialWS(ctx context.Context, addr, subprotocol string) (*websocket.Conn, error) {
	c, resp, err := websocket.Dial(ctx, (&url.URL{Scheme: "ws", Host: addr, Path: "/"}).String(), &websocket.DialOptions{
		Subprotocols: []string{subprotocol},
		HTTPClient:   benchHTTPClient,
	})
	if err != nil {
		return nil, err
	}
	if got := c.Subprotocol(); got != subprotocol {
		c.CloseNow()
		return nil, fmt.Errorf("server chose subprotocol %q, not %q (status %d)", got, subprotocol, resp.StatusCode)
	}
	c.SetReadLimit(16 << 20)
	return c, nil
}
