//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/b64"
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
		return &base64Stream{c: c}, nil
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

// base64Stream speaks the base64 subprotocol: text messages carrying
// base64, decoded into a byte stream. It reuses its buffers, as a browser
// would not need to share its CPU with the bridge: the figures are the
// bridge's, not this client's allocations.
type base64Stream struct {
	c       *websocket.Conn
	enc     []byte
	raw     []byte
	dec     []byte
	pending []byte
}

func (s *base64Stream) Write(p []byte) (int, error) {
	s.enc = b64.AppendEncode(s.enc[:0], p)
	if err := s.c.Write(context.Background(), websocket.MessageText, s.enc); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *base64Stream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		_, r, err := s.c.Reader(context.Background())
		if err != nil {
			return 0, err
		}
		buf := bytes.NewBuffer(s.raw[:0])
		if _, err := buf.ReadFrom(r); err != nil {
			return 0, err
		}
		s.raw = buf.Bytes()
		if need := base64.StdEncoding.DecodedLen(len(s.raw)); cap(s.dec) < need {
			s.dec = make([]byte, need)
		}
		n, err := b64.Decode(s.dec[:cap(s.dec)], s.raw)
		if err != nil {
			return 0, fmt.Errorf("bad base64 from server: %w", err)
		}
		s.pending = s.dec[:n]
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *base64Stream) Close() error { return s.c.Close(websocket.StatusNormalClosure, "") }
