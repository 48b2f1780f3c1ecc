package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/wsproxy/wsproxy/bridge"
)

// edgeOptions are the options for running behind load balancers and
// reverse proxies: the client's real address (PROXY protocol in and out,
// forwarding headers), listening on a Unix socket, certificate reload.
type edgeOptions struct {
	proxyProtocol   bool
	trustedProxies  listFlag
	forwardedHeader string
	targetProxy     string

	unixListen string
	unixMode   string

	trusted   []netip.Prefix
	targetVer bridge.ProxyProtocolVersion
	unixPerm  fs.FileMode
}

func (e *edgeOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&e.proxyProtocol, "proxy-protocol", false, "every connection must start with a PROXY protocol header (v1 or v2) from a --trusted-proxy address; others are refused")
	fs.Var(&e.trustedProxies, "trusted-proxy", "`CIDR` or address of a load balancer or reverse proxy whose PROXY header or forwarding header is believed (repeatable)")
	fs.StringVar(&e.forwardedHeader, "forwarded-header", "X-Forwarded-For", "the header trusted proxies set: X-Forwarded-For, Forwarded (RFC 7239) or another `name` with X-Forwarded-For's grammar")
	fs.StringVar(&e.targetProxy, "target-proxy-protocol", "", "send a PROXY protocol header (`v1` or v2) with the client's address to the target")
	fs.StringVar(&e.unixListen, "unix-listen", "", "listen on the Unix socket `FILE` (instead of the TCP port unless a source port is given too)")
	fs.StringVar(&e.unixMode, "unix-listen-mode", "", "octal permission `MODE` of the --unix-listen socket (default 600)")
	fs.StringVar(&e.unixMode, "unix-listen-perm", "", "same as --unix-listen-mode")
}

// takeSource tells finish whether the first positional argument is a TCP
// source address. Without --unix-listen it always is. With it (where
// websockify takes no source port), a source port may still be given
// for TCP as well: as the first of two arguments, or as the only one
// with --token-plugin or --unix-target.
func (e *edgeOptions) takeSource(o *options, pos []string) bool {
	if e.unixListen == "" {
		return true
	}
	targetFromFlags := o.tokenPlugin != "" || o.unixTarget != ""
	return len(pos) == 2 || len(pos) == 1 && targetFromFlags
}

func (e *edgeOptions) check(o *options) error {
	var err error
	if len(e.trustedProxies) > 0 {
		if e.trusted, err = bridge.ParseTrustedProxies(e.trustedProxies...); err != nil {
			return fmt.Errorf("--trusted-proxy: %w", err)
		}
	}
	if e.proxyProtocol && len(e.trusted) == 0 {
		return errors.New("--proxy-protocol needs --trusted-proxy: the networks of the load balancers that send the headers")
	}
	if e.targetProxy != "" {
		if e.targetVer, err = bridge.ParseProxyProtocolVersion(e.targetProxy); err != nil {
			return fmt.Errorf("--target-proxy-protocol: %w", err)
		}
	}
	e.unixPerm = 0o600
	if e.unixMode != "" {
		if e.unixListen == "" {
			return errors.New("--unix-listen-mode needs --unix-listen")
		}
		m, err := strconv.ParseUint(e.unixMode, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("--unix-listen-mode %q: want octal permission bits such as 660", e.unixMode)
		}
		e.unixPerm = fs.FileMode(m)
	}
	return nil
}

// apply sets the Handler's client-address fields.
func (e *edgeOptions) apply(h *bridge.Handler) {
	h.TrustedProxies = e.trusted
	h.ClientAddrHeader = e.forwardedHeader
	if e.forwardedHeader == "X-Forwarded-For" {
		h.ClientAddrHeader = ""
	}
	h.TargetProxyProtocol = e.targetVer
}

// listen opens the TCP listener (when addr is not empty) and the Unix one
// (with --unix-listen), each a sniffing bridge.Listener with lopts.
func (e *edgeOptions) listen(addr string, lopts *bridge.ListenerOptions) ([]*bridge.Listener, error) {
	if e.proxyProtocol {
		lopts.ProxyProtocol = &bridge.ProxyProtocolPolicy{TrustedProxies: e.trusted}
	}
	var ls []*bridge.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	if addr != "" {
		l, err := bridge.Listen("tcp", addr, lopts)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	if e.unixListen != "" {
		inner, err := bridge.ListenUnix(e.unixListen, e.unixPerm)
		if err != nil {
			closeAll()
			return nil, err
		}
		l, err := bridge.NewListener(inner, lopts)
		if err != nil {
			inner.Close()
			closeAll()
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// serve runs srv on every listener; the first error (or nil after
// Shutdown) of each arrives on the returned channel.
func serveAll(srv *http.Server, ls []*bridge.Listener) <-chan error {
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errs <- srv.Serve(l) }()
	}
	return errs
}

// watchCert reloads the certificate on SIGHUP and when its files change,
// until ctx ends; wait returns once it has stopped.
func watchCert(ctx context.Context, r *bridge.CertReloader, log *slog.Logger) (wait func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("wsbridge: SIGHUP: reading the certificate again")
				_ = r.Reload()
			}
		}
	}()
	go func() {
		defer wg.Done()
		if err := r.Watch(ctx); err != nil {
			log.Warn("wsbridge: certificate files not watched; send SIGHUP after replacing them", "err", err)
		}
	}()
	return wg.Wait
}

// addrString names a listener's address for logs: host:port or unix:PATH.
func addrString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}
