package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Defaults for ListenerOptions.
const (
	// DefaultPeekTimeout bounds how long a new connection may stay silent
	// before the Listener has seen enough bytes to classify it.
	DefaultPeekTimeout = 3 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake the Listener runs
	// itself, so that its failures are logged with a clear reason.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultMaxPending caps the connections being classified or waiting
	// for Accept at once; beyond it the Listener stops accepting from the
	// network until a slot frees.
	DefaultMaxPending = 1024
)

// ListenerOptions configures a Listener. The zero value serves plain
// connections and the default Flash policy, refuses TLS (no certificate)
// and uses the defaults above.
type ListenerOptions struct {
	// TLSConfig answers connections whose first byte is a TLS handshake
	// record (0x16) or an SSLv2-style hello (0x80). Nil refuses them with a
	// log line naming the missing certificate. When NextProtos is empty it
	// is set to http/1.1 on a copy (HTTP/2 cannot carry a WebSocket
	// upgrade through http.Hijacker).
	TLSConfig *tls.Config
	// SSLOnly closes plain (non-TLS) connections after logging them; Flash
	// policy requests are still answered, as websockify did.
	SSLOnly bool
	// PeekTimeout is how long a new connection may take to send its first
	// bytes; zero means DefaultPeekTimeout. Silent clients are closed.
	PeekTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake; zero means
	// DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// FlashPolicy is answered to "<policy-file-request/>"; nil means the
	// zero FlashPolicy (every domain, every port).
	FlashPolicy *FlashPolicy
	// DisableFlashPolicy passes policy requests on as plain connections
	// (the HTTP server then answers 400).
	DisableFlashPolicy bool
	// MaxPending caps connections being classified or waiting for Accept;
	// zero means DefaultMaxPending.
	MaxPending int
	// Logger receives one line per refused or failed connection; nil means
	// slog.Default().
	Logger *slog.Logger

	// ProxyProtocol, when not nil, requires a PROXY protocol header (v1 or
	// v2, as HAProxy's send-proxy and send-proxy-v2 write it) at the start
	// of every connection, before TLS, Flash and HTTP are told apart, as
	// nginx's "listen ... proxy_protocol" and HAProxy's accept-proxy do;
	// see ProxyProtocolPolicy. Nil reads no header.
	ProxyProtocol *ProxyProtocolPolicy
}

// ProxyProtocolPolicy says who may send the PROXY headers a Listener
// requires (ListenerOptions.ProxyProtocol). Connections from outside
// TrustedProxies are closed before anything is read, whether or not they
// would send a header; a trusted peer that sends none, a bad one or a
// datagram one within PeekTimeout is closed too, each with a log line.
// The header's source and destination become the connection's RemoteAddr
// and LocalAddr (so http.Request.RemoteAddr is the client's); a LOCAL
// header (a proxy's health check) keeps the socket's. Peers of a
// Unix-socket listener are trusted: the socket file's permissions decide
// who connects.
type ProxyProtocolPolicy struct {
	// TrustedProxies are the networks allowed to send PROXY headers; see
	// ParseTrustedProxies. Empty refuses every TCP connection.
	TrustedProxies []netip.Prefix
}

// Listener serves TLS, plain HTTP and Flash policy requests on one port,
// optionally behind load balancers that send PROXY protocol headers
// (ListenerOptions.ProxyProtocol, read first). It peeks at the first bytes of each accepted connection without
// consuming them: a TLS hello becomes a *tls.Conn whose handshake is
// already done (so http.Server sets Request.TLS), a Flash policy request
// is answered and closed inside the Listener, and anything else is
// returned as a plain connection with the peeked bytes put back.
//
// Connections are classified in their own goroutines, so a slow client
// never delays Accept for others; at most MaxPending are in flight. Use it
// with http.Server.Serve:
//
//	l, err := bridge.Listen("tcp", ":6080", &bridge.ListenerOptions{TLSConfig: cfg})
//	...
//	err = http.Serve(l, handler)
type Listener struct {
	inner  net.Listener
	opts   ListenerOptions
	policy []byte
	log    *slog.Logger

	ready chan net.Conn
	slots chan struct{}
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu  sync.Mutex
	err error // why the accept loop ended
}

// Listen announces on the local network address (see net.Listen) and
// returns a sniffing Listener over it.
func Listen(network, address string, opts *ListenerOptions) (*Listener, error) {
	inner, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	l, err := NewListener(inner, opts)
	if err != nil {
		inner.Close()
		return nil, err
	}
	return l, nil
}

// NewListener wraps inner, which the Listener owns from now on (Close
// closes it). inner may be any net.Listener: TCP, a Unix socket from
// ListenUnix, one inherited from systemd. opts may be nil. It fails only
// on an invalid FlashPolicy.
func NewListener(inner net.Listener, opts *ListenerOptions) (*Listener, error) {
	var o ListenerOptions
	if opts != nil {
		o = *opts
	}
	if o.PeekTimeout <= 0 {
		o.PeekTimeout = DefaultPeekTimeout
	}
	if o.TLSHandshakeTimeout <= 0 {
		o.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.TLSConfig != nil && len(o.TLSConfig.NextProtos) == 0 {
		o.TLSConfig = o.TLSConfig.Clone()
		o.TLSConfig.NextProtos = []string{"http/1.1"}
	}
	policy, err := o.FlashPolicy.Bytes()
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Listener{
		inner:  inner,
		opts:   o,
		policy: policy,
		log:    logger,
		ready:  make(chan net.Conn),
		slots:  make(chan struct{}, o.MaxPending),
		ctx:    ctx,
		stop:   stop,
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Accept returns the next classified connection: a *tls.Conn after a
// successful handshake, or a plain connection (which implements
// interface{ NetConn() net.Conn } to reach the socket). After Close it
// returns net.ErrClosed; after the inner listener fails, that error.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener and every connection not yet returned
// by Accept, and waits for the Listener's goroutines to end. Connections
// already returned are the caller's.
func (l *Listener) Close() error {
	l.stop()
	err := l.inner.Close()
	l.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		c, err := l.inner.Accept()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.log.Warn("bridge: accept failed, retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-l.ctx.Done():
					return
				}
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.stop()
			return
		}
		backoff = 0
		l.wg.Add(1)
		go l.classify(c)
	}
}

type connKind int

const (
	kindPlain connKind = iota
	kindTLS
	kindPolicy
)

func (k connKind) String() string {
	return [...]string{"plain", "tls", "flash policy"}[k]
}

// classify peeks at c, then hands it to Accept, answers it or closes it.
func (l *Listener) classify(c net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	// Close the connection if the Listener closes while we hold it; the
	// stop function tells whether that already happened.
	stop := context.AfterFunc(l.ctx, func() { c.Close() })
	remote := c.RemoteAddr().String()

	if l.opts.ProxyProtocol != nil {
		proxied, err := l.readProxyHeader(c)
		if err != nil {
			if stop() {
				l.log.Warn("bridge: connection refused", "remote", remote, "reason", err)
				c.Close()
			}
			return
		}
		c = proxied
		remote = c.RemoteAddr().String()
	}
	kind, peeked, err := l.peek(c)
	if err != nil {
		if stop() {
			l.log.Debug("bridge: connection closed before its first bytes", "remote", remote, "err", err)
			c.Close()
		}
		return
	}
	pc := &peekedConn{Conn: c, peeked: peeked}
	if inner, ok := c.(*peekedConn); ok {
		// Bytes read past a PROXY header: the peek consumed them first.
		pc = &peekedConn{Conn: inner.Conn, peeked: append(peeked, inner.peeked...)}
	}
	switch {
	case kind == kindPolicy && !l.opts.DisableFlashPolicy:
		// Read the NUL that ends the request first: closing with unread
		// bytes would reset the connection and could destroy the answer.
		_ = c.SetDeadline(time.Now().Add(l.opts.PeekTimeout))
		var nul [1]byte
		_, _ = io.ReadFull(c, nul[:])
		_, err := c.Write(l.policy)
		if err != nil {
			l.log.Debug("bridge: Flash policy answer failed", "remote", remote, "err", err)
		} else {
			l.log.Debug("bridge: answered a Flash policy request", "remote", remote)
		}
		stop()
		c.Close()
		return
	case kind == kindTLS:
		if l.opts.TLSConfig == nil {
			l.log.Warn("bridge: TLS connection refused: no certificate configured (set --cert/--key or ListenerOptions.TLSConfig)", "remote", remote)
			stop()
			c.Close()
			return
		}
		tc := tls.Server(pc, l.opts.TLSConfig)
		hctx, cancel := context.WithTimeout(l.ctx, l.opts.TLSHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			if l.ctx.Err() == nil {
				l.log.Warn("bridge: TLS handshake failed", "remote", remote, "err", err)
			}
			stop()
			c.Close()
			return
		}
		l.deliver(tc, stop)
	default: // plain, or a policy request with the policy disabled
		if l.opts.SSLOnly {
			l.log.Warn("bridge: plain connection refused: only TLS is accepted (--ssl-only)", "remote", remote)
			stop()
			c.Close()
			return
		}
		l.deliver(pc, stop)
	}
}

// deliver hands c to Accept, or closes it when the Listener closes first.
func (l *Listener) deliver(c net.Conn, stop func() bool) {
	select {
	case l.ready <- c:
		if !stop() {
			// The Listener closed while handing over: the AfterFunc has
			// closed the socket, and Accept's caller sees a closed conn.
			return
		}
	case <-l.ctx.Done():
		c.Close()
	}
}

// peek reads until the connection's kind is known, under PeekTimeout.
func (l *Listener) peek(c net.Conn) (connKind, []byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(l.opts.PeekTimeout)); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, len(FlashPolicyRequest))
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if n > 0 {
			if kind, done := classifyPrefix(buf[:n]); done {
				if err := c.SetReadDeadline(time.Time{}); err != nil {
					return 0, nil, err
				}
				return kind, buf[:n], nil
			}
		}
		if err != nil {
			return 0, nil, fmt.Errorf("after %d bytes: %w", n, err)
		}
	}
}

// classifyPrefix decides from the first bytes, or asks for more (done is
// false) while they could still be a Flash policy request.
func classifyPrefix(p []byte) (kind connKind, done bool) {
	switch p[0] {
	case 0x16, 0x80:
		return kindTLS, true
	}
	if !bytes.HasPrefix([]byte(FlashPolicyRequest), p) {
		return kindPlain, true
	}
	if len(p) == len(FlashPolicyRequest) {
		return kindPolicy, true
	}
	return 0, false
}

// peekedConn replays the peeked bytes before reading from the socket.
type peekedConn struct {
	net.Conn
	peeked []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the underlying connection, for example to set TCP
// options. Bytes already peeked are not replayed by it.
func (c *peekedConn) NetConn() net.Conn { return c.Conn }
