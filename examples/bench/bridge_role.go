//go:build linux

package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/hixie"
	"github.com/wsproxy/wsproxy/internal/hixie/hixietest"
)

func init() {
	roles["bridge"] = func(target string) (net.Listener, func(net.Listener) error, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		h := &bridge.Handler{
			Resolver: bridge.FixedTarget{Address: target},
			MaxConns: -1, // the many-connections scenario holds thousands
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		return ln, srv.Serve, nil
	}
}

// hixieFlavor speaks Hixie-76 (0x00 base64 0xFF frames) to the bridge:
// hixietest does the handshake, and the frames go through package hixie's
// streaming encoder and decoder, which reuse their buffers, so that the
// client's share of the two cores stays small.
var hixieFlavor = flavor{"Hixie-76", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
	c, err := hixietest.Dial(ctx, addr, hixietest.Options{Protocol: "base64"})
	if err != nil {
		return nil, err
	}
	return &hixieStream{c: c, dec: hixie.NewDecoder(c, 1<<20), enc: hixie.NewEncoder(c)}, nil
}}

type hixieStream struct {
	c   *hixietest.Conn
	dec *hixie.Decoder
	enc *hixie.Encoder
}

func (s *hixieStream) Write(p []byte) (int, error) { return s.enc.Write(p) }
func (s *hixieStream) Read(p []byte) (int, error)  { return s.dec.Read(p) }
func (s *hixieStream) Close() error                { return s.c.Close() }
