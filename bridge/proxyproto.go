// PROXY protocol (HAProxy's, v1 text and v2 binary) on both sides: read
// from trusted load balancers by the Listener, sent to targets by the
// Handler. github.com/pires/go-proxyproto parses and writes the headers.

package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocolVersion selects the PROXY protocol header the Handler sends
// to targets (Handler.TargetProxyProtocol).
type ProxyProtocolVersion int

// PROXY protocol versions.
const (
	// ProxyProtocolV1 is the human-readable header
	// ("PROXY TCP4 192.0.2.7 198.51.100.1 51000 6080\r\n").
	ProxyProtocolV1 ProxyProtocolVersion = 1
	// ProxyProtocolV2 is the binary header.
	ProxyProtocolV2 ProxyProtocolVersion = 2
)

// ErrProxyProtocol is wrapped by the errors of PROXY protocol handling:
// an unknown version to send, a connection refused by the Listener.
var ErrProxyProtocol = errors.New("bridge: PROXY protocol")

// ParseProxyProtocolVersion parses "v1", "v2", "1" or "2" (any case).
func ParseProxyProtocolVersion(s string) (ProxyProtocolVersion, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "v1", "1":
		return ProxyProtocolV1, nil
	case "v2", "2":
		return ProxyProtocolV2, nil
	}
	return 0, fmt.Errorf("%w: version %q: want v1 or v2", ErrProxyProtocol, s)
}

// sendTargetProxyHeader writes the PROXY header for r's client to the
// freshly dialled target c, when TargetProxyProtocol asks for one.
func (h *Handler) sendTargetProxyHeader(ctx context.Context, c net.Conn, r *http.Request) error {
	if h.TargetProxyProtocol == 0 {
		return nil
	}
	hdr, err := targetProxyHeader(h.TargetProxyProtocol, r)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
		defer func() { _ = c.SetWriteDeadline(time.Time{}) }()
	}
	if _, err := hdr.WriteTo(c); err != nil {
		return fmt.Errorf("sending the PROXY header to the target: %w", err)
	}
	return nil
}

// targetProxyHeader builds the header: the client's real address as the
// source, the address the client connected to as the destination (the
// PROXY header's destination when the Listener read one). Families that
// differ are sent as IPv6 with the IPv4 side mapped; a client whose IP is
// unknown gets PROXY UNKNOWN (v1) or LOCAL (v2).
func targetProxyHeader(v ProxyProtocolVersion, r *http.Request) (*proxyproto.Header, error) {
	if v != ProxyProtocolV1 && v != ProxyProtocolV2 {
		return nil, fmt.Errorf("%w: cannot send version %d: want 1 or 2", ErrProxyProtocol, int(v))
	}
	src, ok := ClientAddrPort(r.Context())
	if !ok {
		return proxyproto.HeaderProxyFromAddrs(byte(v), nil, nil), nil
	}
	var dst netip.AddrPort
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		dst = la.AddrPort()
		dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	}
	if !dst.IsValid() {
		// A Unix-socket listener: no destination address to tell.
		dst = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		if src.Addr().Is6() {
			dst = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		}
	}
	return proxyproto.HeaderProxyFromAddrs(byte(v), net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)), nil
}

// readProxyHeader runs ListenerOptions.ProxyProtocol on a new connection:
// the peer must be trusted and send a header within PeekTimeout. It
// returns the connection with the header's addresses (unchanged for a
// LOCAL header, a proxy's own health check) and any bytes read past the
// header put back.
func (l *Listener) readProxyHeader(c net.Conn) (net.Conn, error) {
	if !peerTrusted(l.opts.ProxyProtocol.TrustedProxies, c.RemoteAddr()) {
		return nil, fmt.Errorf("%w: not from a trusted proxy (--trusted-proxy)", ErrProxyProtocol)
	}
	if err := c.SetReadDeadline(time.Now().Add(l.opts.PeekTimeout)); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, 256)
	hdr, err := proxyproto.Read(br)
	if err != nil {
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			return nil, fmt.Errorf("%w: no PROXY header from a trusted proxy", ErrProxyProtocol)
		}
		return nil, fmt.Errorf("%w: reading the header: %w", ErrProxyProtocol, err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	rest, _ := br.Peek(br.Buffered())
	pc := &proxiedConn{Conn: c, remote: c.RemoteAddr(), local: c.LocalAddr()}
	if hdr.Command.IsProxy() {
		if !hdr.TransportProtocol.IsStream() {
			return nil, fmt.Errorf("%w: header for a datagram connection", ErrProxyProtocol)
		}
		if hdr.SourceAddr == nil || hdr.DestinationAddr == nil {
			return nil, fmt.Errorf("%w: header without addresses", ErrProxyProtocol)
		}
		pc.remote, pc.local = hdr.SourceAddr, hdr.DestinationAddr
	}
	return &peekedConn{Conn: pc, peeked: append([]byte(nil), rest...)}, nil
}

// peerTrusted reports whether a load balancer at addr may send PROXY
// headers: an IP inside prefixes, or any Unix-socket peer (the socket
// file's permissions decide who connects).
func peerTrusted(prefixes []netip.Prefix, addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		return trusted(prefixes, a.AddrPort().Addr())
	}
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && trusted(prefixes, ap.Addr())
}

// proxiedConn reports the addresses of a PROXY header instead of the
// socket's, so http.Server's Request.RemoteAddr and LocalAddrContextKey
// carry the client's.
type proxiedConn struct {
	net.Conn
	remote, local net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }
func (c *proxiedConn) LocalAddr() net.Addr  { return c.local }

// NetConn returns the socket (whose addresses are the load balancer's).
func (c *proxiedConn) NetConn() net.Conn { return c.Conn }
