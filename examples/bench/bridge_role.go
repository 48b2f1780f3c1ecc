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

// hixieFlavor speaks Hixie-76 (0x00 base64 0xFF frames) to the bridge.
var hixieFlavor = flavor{"Hixie-76", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
	c, err := hixietest.Dial(ctx, addr, hixietest.Options{Protocol: "base64"})
	if err != nil {
		return nil, err
	}
	return &hixieStream{c: c}, nil
}}

type hixieStream struct {
	c       *hixietest.Conn
	pending []byte
}

func (s *hixieStream) Write(p []byte) (int, error) {
	if err := s.c.Send(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *hixieStream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		_, payload, err := s.c.Recv()
		if err != nil {
			return 0, err
		}
		s.pending = payload
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *hixieStream) Close() error { return s.c.Close() }
