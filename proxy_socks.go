package wsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"

	"golang.org/x/net/proxy"
)

// errSOCKSAnswered marks a SOCKS failure after the TCP connection to the
// proxy was made (authentication refused, target unreachable from the
// proxy): the proxy is up, so a dial does not fail over to the next one.
var errSOCKSAnswered = errors.New("the SOCKS proxy refused the request")

// dialSOCKS opens a connection to target through a SOCKS5 proxy, with
// username/password authentication (RFC 1929) when the URL carries
// credentials. For socks5 the target's name is resolved here; for socks5h,
// by the proxy. The whole negotiation is bounded by the connect timeout.
func (d *Dialer) dialSOCKS(ctx context.Context, p *url.URL, target string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.connectTimeout())
	defer cancel()
	addr := p.Host
	if p.Port() == "" {
		addr = net.JoinHostPort(p.Hostname(), "1080")
	}
	var auth *proxy.Auth
	if p.User != nil {
		c := userinfoCredentials(p)
		auth = &proxy.Auth{User: c.Username, Password: c.Password}
	}
	if p.Scheme == "socks5" {
		host, port, _ := net.SplitHostPort(target)
		if net.ParseIP(host) == nil {
			ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil || len(ips) == 0 {
				return nil, &ProxyError{Proxy: redact(p), Target: target, Err: fmt.Errorf("resolve target locally (use socks5h:// to resolve at the proxy): %w", err)}
			}
			target = net.JoinHostPort(ips[0].IP.String(), port)
		}
	}
	var reached atomic.Bool
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.netDial(ctx, network, addr)
		reached.Store(err == nil)
		return c, err
	}
	sd, err := proxy.SOCKS5("tcp", addr, auth, contextDialer(dial))
	if err != nil {
		return nil, &ProxyError{Proxy: redact(p), Target: target, Err: err}
	}
	d.logf("SOCKS5 %s: CONNECT %s", redact(p), target)
	c, err := sd.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err != nil {
		if reached.Load() && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errSOCKSAnswered, err)
		}
		return nil, &ProxyError{Proxy: redact(p), Target: target, Err: fmt.Errorf("SOCKS5: %w", err)}
	}
	d.logf("tunnel to %s open", target)
	return c, nil
}

type contextDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (f contextDialer) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f contextDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}
