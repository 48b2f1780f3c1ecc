//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsproxy/wsproxy"
)

// tunnelTable measures bulk throughput from a Dialer's side: the same
// bridge and echo reached directly by coder/websocket, and through
// tinyproxy by wsproxy's Dialer (coder/websocket over the tunnel) and by
// gorilla/websocket's Dialer; a raw CONNECT tunnel to the echo shows what
// tinyproxy itself allows.
func tunnelTable(cfg config, s *setup) (table, []string, error) {
	t := table{
		title: "Bulk through a proxy (the Dialer)",
		note: fmt.Sprintf("One connection streams %d KiB messages to the bridge and its echo for %v, as in Bulk throughput, but with each library's own client: "+
			"coder/websocket directly, then wsproxy's Dialer and gorilla/websocket's through tinyproxy (CONNECT, Basic). "+
			"The raw CONNECT row is a TCP tunnel through the same tinyproxy straight to the echo: the proxy's own limit. Median of %d rounds.",
			cfg.size>>10, cfg.duration, cfg.rounds),
		header: []string{"client, route", "MB/s", "× coder/websocket direct", "× gorilla via tinyproxy"},
	}
	tp, err := s.tinyproxy()
	if err != nil {
		return t, []string{"tinyproxy: " + err.Error() + "; the proxy rows of Bulk through a proxy are left out"}, nil
	}
	pu := &url.URL{Scheme: "http", Host: tp, User: url.UserPassword("alice", "s3cret")}
	const (
		direct  = "coder/websocket, direct"
		gorVia  = "gorilla/websocket via tinyproxy"
		echoVia = "raw TCP via tinyproxy CONNECT, to the echo"
	)
	list := []contestant{
		{direct, coderBinary, s.bridge.addr, 0},
		{"wsproxy Dialer via tinyproxy", wsproxyVia(pu), s.bridge.addr, 0},
		{gorVia, gorillaVia(pu), s.bridge.addr, 0},
		{echoVia, connectVia(pu), s.echo.addr, 0},
	}
	results := make([][]float64, len(list))
	for r := 0; r < cfg.rounds; r++ {
		for i, c := range list {
			v, err := throughput(c.flavor, c.addr, cfg.size, cfg.duration)
			if err != nil {
				return t, nil, fmt.Errorf("bulk through a proxy, %s: %w", c.label, err)
			}
			results[i] = append(results[i], v)
		}
	}
	directMed, gorMed := refMedian(list, results, direct), refMedian(list, results, gorVia)
	for i, c := range list {
		m := median(results[i])
		t.rows = append(t.rows, []string{c.label, fmt.Sprintf("%.0f", m), ratio(m, directMed), ratio(m, gorMed)})
	}
	return t, nil, nil
}

// wsproxyVia dials with wsproxy's Dialer through proxy.
func wsproxyVia(proxy *url.URL) flavor {
	return flavor{"wsproxy", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		d := &wsproxy.Dialer{Proxy: http.ProxyURL(proxy)}
		c, _, err := d.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(16 << 20)
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}}
}

// gorillaVia dials with gorilla/websocket's Dialer through proxy.
func gorillaVia(proxy *url.URL) flavor {
	return flavor{"gorilla", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		d := &gorilla.Dialer{Proxy: http.ProxyURL(proxy), Subprotocols: []string{"binary"}}
		c, _, err := d.DialContext(ctx, "ws://"+addr+"/", nil)
		if err != nil {
			return nil, err
		}
		return &gorillaStream{c: c}, nil
	}}
}

// gorillaStream is a gorilla/websocket connection as a byte stream: each
// Write one binary message, Read the payload of the messages received.
type gorillaStream struct {
	c *gorilla.Conn
	r io.Reader
}

func (g *gorillaStream) Write(p []byte) (int, error) {
	if err := g.c.WriteMessage(gorilla.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (g *gorillaStream) Read(p []byte) (int, error) {
	for {
		if g.r == nil {
			_, r, err := g.c.NextReader()
			if err != nil {
				return 0, err
			}
			g.r = r
		}
		n, err := g.r.Read(p)
		if err == io.EOF {
			g.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (g *gorillaStream) Close() error { return g.c.Close() }

// connectVia opens a plain TCP tunnel through proxy with CONNECT.
func connectVia(proxy *url.URL) flavor {
	return flavor{"CONNECT", func(ctx context.Context, addr string) (io.ReadWriteCloser, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", proxy.Host)
		if err != nil {
			return nil, err
		}
		pass, _ := proxy.User.Password()
		auth := base64.StdEncoding.EncodeToString([]byte(proxy.User.Username() + ":" + pass))
		if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", addr, addr, auth); err != nil {
			c.Close()
			return nil, err
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			c.Close()
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			c.Close()
			return nil, fmt.Errorf("CONNECT: %s", resp.Status)
		}
		return struct {
			io.Reader
			io.Writer
			io.Closer
		}{br, c, c}, nil
	}}
}
