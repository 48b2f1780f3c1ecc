package wsproxy

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"golang.org/x/net/proxy"
)

// dialSOCKS opens a connection to target through a SOCKS5 proxy, with
// username/password authentication when the URL carries credentials. For
// socks5 the target's name is resolved here; for socks5h, by the proxy.
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
	sd, err := proxy.SOCKS5("tcp", addr, auth, contextDialer(d.netDial))
	if err != nil {
		return nil, &ProxyError{Proxy: redact(p), Target: target, Err: err}
	}
	c, err := sd.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, &ProxyError{Proxy: redact(p), Target: target, Err: fmt.Errorf("SOCKS5: %w", err)}
	}
	return c, nil
}

type contextDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (f contextDialer) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f contextDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}
