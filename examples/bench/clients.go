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
	// wsBinary and wsBase64 are the lean client (see leanWS) that every
	// WebSocket contestant of the relay scenarios gets.
	wsBinary = flavor{"binary", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		return dialLean(ctx, addr, "binary")
	}}
	wsBase64 = flavor{"base64", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		return dialLean(ctx, addr, "base64")
	}}
	// coderBinary is coder/websocket's client, as an application would
	// use it: the many-connections scenario and the Dialer comparison.
	coderBinary = flavor{"binary", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		c, err := dialWS(ctx, addr, "binary")
		if err != nil {
			return nil, err
		}
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
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
