//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsproxy/wsproxy"
)

// dialStats is one dial measured: how long until the WebSocket was open,
// how many TCP connections and CONNECT requests it cost.
type dialStats struct {
	took     time.Duration
	tcpConns int64
	connects int64
}

// wsproxyDial opens and closes one WebSocket to target through proxy (nil:
// direct) with d, counting connections and CONNECT requests.
func wsproxyDial(d *wsproxy.Dialer, target string, proxy *url.URL) (dialStats, error) {
	var tcp, connects atomic.Int64
	// Set the counting hooks on d itself: a copy would not share d's
	// credential and Digest nonce cache, and later dials would look like
	// first ones.
	dd := d
	dd.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		tcp.Add(1)
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr)
	}
	dd.Logf = func(format string, args ...any) {
		if strings.HasPrefix(format, "-> CONNECT") {
			connects.Add(1)
		}
	}
	if proxy != nil {
		dd.Proxy = http.ProxyURL(proxy)
	} else {
		dd.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, _, err := dd.Dial(ctx, target, nil)
	took := time.Since(start)
	if err != nil {
		return dialStats{}, err
	}
	c.Close(websocket.StatusNormalClosure, "")
	return dialStats{took: took, tcpConns: tcp.Load(), connects: connects.Load()}, nil
}

// gorillaDial does the same with gorilla/websocket's Dialer, which sends
// Basic credentials from the proxy URL preemptively and knows no other
// scheme.
func gorillaDial(target string, proxy *url.URL, tlsConf *tls.Config) (dialStats, error) {
	var tcp atomic.Int64
	d := &gorilla.Dialer{
		Proxy:           http.ProxyURL(proxy),
		TLSClientConfig: tlsConf,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			tcp.Add(1)
			var nd net.Dialer
			return nd.DialContext(ctx, network, addr)
		},
		HandshakeTimeout: 10 * time.Second,
	}
	start := time.Now()
	c, _, err := d.Dial(target, nil)
	took := time.Since(start)
	if err != nil {
		return dialStats{}, err
	}
	c.Close()
	return dialStats{took: took, tcpConns: tcp.Load(), connects: 1}, nil
}
