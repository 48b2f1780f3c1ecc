package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Defaults for Handler fields left zero.
const (
	// DefaultMaxConns caps concurrent connections when Handler.MaxConns is
	// zero.
	DefaultMaxConns = 1024
	// DefaultDialTimeout bounds dialing the target (and its TLS handshake)
	// when Handler.DialTimeout is zero.
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxMessageSize caps one client message in base64 mode when
	// Handler.MaxMessageSize is zero (binary messages are streamed and
	// have no cap).
	DefaultMaxMessageSize = 1 << 20
	// DefaultHeartbeatTimeout is how long a ping may wait for its pong when
	// Handler.HeartbeatTimeout is zero.
	DefaultHeartbeatTimeout = 10 * time.Second
)

// Handler accepts WebSocket connections and relays each to the target its
// Resolver names. Requests that are not WebSocket upgrades go to Static,
// or get 426 Upgrade Required. Fields must not change once the Handler
// serves requests; nil and zero fields mean the documented defaults. A
// Handler must not be copied after first use.
type Handler struct {
	// Resolver picks each connection's target. Nil refuses every request
	// with 500 and a log line: there is no default target.
	Resolver TargetResolver

	// Dial opens the connection to the target; nil means a net.Dialer
	// with DialTimeout. The context carries the dial timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds Dial and the TLS handshake with the target; zero
	// means DefaultDialTimeout.
	DialTimeout time.Duration
	// TargetTLS, when not nil, makes the bridge speak TLS to the target
	// (websockify's --ssl-target), verifying its certificate against
	// ServerName (the target's host when the config leaves it empty).
	// Set InsecureSkipVerify in it for websockify's unverified behaviour.
	TargetTLS *tls.Config
	// TargetProxyProtocol, when ProxyProtocolV1 or ProxyProtocolV2, sends
	// a PROXY protocol header with the client's real address (see
	// ClientAddr) to the target right after dialling it, before any TLS,
	// so a server behind the bridge that accepts PROXY headers (HAProxy's
	// accept-proxy, nginx's proxy_protocol) sees who connected. A client
	// whose IP is unknown (a Unix-socket client, an obfuscated Forwarded
	// node) is sent "PROXY UNKNOWN" (v1) or a LOCAL header (v2). Zero
	// sends nothing; other values fail every dial.
	TargetProxyProtocol ProxyProtocolVersion

	// TrustedProxies lists the proxies whose forwarding header
	// (ClientAddrHeader) is believed; nil or empty believes none, so the
	// client is the socket's peer (or the source of the PROXY header the
	// Listener read). When the peer is trusted, the header's hops are
	// walked from the right and the first untrusted one is the client
	// (all trusted: the leftmost); clients of a Unix-socket listener
	// count as trusted when the list is not empty. A malformed hop
	// reached by the walk makes the client "unknown". See
	// ParseTrustedProxies.
	TrustedProxies []netip.Prefix
	// ClientAddrHeader names the header the trusted proxies set: empty
	// means X-Forwarded-For, HeaderForwarded selects RFC 7239's
	// Forwarded (its for= parameters); any other name is read with
	// X-Forwarded-For's grammar (comma-separated addresses). Only one
	// header is read, because a client can send the other one itself.
	ClientAddrHeader string

	// AllowedOrigins lists the browser origins allowed besides the
	// request's own host. Nil or empty means same-origin only: the Origin
	// header's host must equal the request's Host. Requests without an
	// Origin header (non-browser clients) are always allowed, since the
	// check protects browsers against cross-site WebSocket hijacking.
	// Each entry is a full origin ("https://app.example.com:8443",
	// compared exactly), a host pattern in path.Match syntax
	// ("*.example.com"), or "*" for any origin, which lets any web page
	// a user visits connect through the bridge with that user's
	// credentials. Refused requests get 403.
	AllowedOrigins []string
	// BasicAuth, when not nil, requires HTTP Basic credentials on every
	// request, static files included; failures get 401 with
	// WWW-Authenticate.
	BasicAuth *BasicAuth
	// ClientCertCNs, when not empty, requires a verified TLS client
	// certificate whose subject common name is in the list; others get
	// 403. The server's tls.Config must request and verify client
	// certificates (ClientAuth: tls.RequireAndVerifyClientCert).
	ClientCertCNs []string

	// HeartbeatInterval, when positive, pings each RFC 6455 client this
	// often; a client that does not answer within HeartbeatTimeout is
	// dropped (a dead peer). Zero disables pings. While the relay waits
	// for a slow or stuck target to take the client's bytes, nothing
	// reads the client, so an unanswered ping is not held against it then
	// (IdleTimeout ends connections whose target stopped reading).
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a ping waits for its pong; zero means
	// DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// IdleTimeout, when positive, closes a connection (1001 "idle
	// timeout") after this long without payload in either direction.
	// Pings and pongs do not count as activity. Zero means no limit.
	IdleTimeout time.Duration
	// MaxConns caps concurrent connections; beyond it requests get 503.
	// Zero means DefaultMaxConns, negative means no cap.
	MaxConns int
	// BufferSize is the relay buffer per direction, which bounds the
	// memory a connection holds and the size of the messages sent to the
	// client; zero means DefaultBufferSize.
	BufferSize int
	// MaxMessageSize caps a client message in base64 mode (the client is
	// closed with 1009 beyond it); zero means DefaultMaxMessageSize. Text
	// messages are decoded and forwarded as they stream in, never held
	// whole, so when a message breaks the cap or turns out to hold invalid
	// base64 (1007), the payload decoded before that point has already
	// reached the target, as with a binary message cut short.
	MaxMessageSize int64

	// Static serves requests that are not WebSocket upgrades, for example
	// Static("/usr/share/novnc", false). Nil answers them with 426.
	Static http.Handler

	// Logger receives one line per connection (and per refused request);
	// nil means slog.Default().
	Logger *slog.Logger

	// OpenTap, when not nil, is called once per connection after the
	// WebSocket opened and before the target is dialled (so recording
	// times count from the handshake); a non-nil Tap sees the payload both ways (for
	// recording, see Recorder and TrafficLegend). When the Tap is also an
	// io.Closer it is closed after the connection ends. An error is logged
	// and the connection goes on without a tap.
	OpenTap func(ConnInfo) (Tap, error)

	ids       atomic.Uint64
	open      atomic.Int64
	total     atomic.Uint64
	refused   refusals // by reason (metrics.go)
	failed    atomic.Uint64
	bytesIn   atomic.Int64 // finished connections only; live ones are added in Stats
	bytesOut  atomic.Int64
	mu        sync.Mutex
	conns     map[uint64]*relay
	shutdown  bool // no new connections
	forced    bool // Shutdown's deadline passed: close every connection
	connsDone sync.WaitGroup
	draining  atomic.Bool // Drain or Shutdown called: not ready (drain.go)
	metrics   connMetrics // histograms and close codes (metrics.go)
}

// ConnInfo describes a connection to OpenTap.
type ConnInfo struct {
	ID          uint64        // the connection's number in logs, from 1
	Remote      string        // the client's real address (see ClientAddr)
	Target      Target        // where the connection is relayed
	Subprotocol string        // "binary", "base64" or "" (none offered)
	Protocol    string        // "rfc6455", "hixie-75", "hixie-76"
	Request     *http.Request // the opening handshake; do not keep it
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Handler) maxMessageSize() int64 {
	if h.MaxMessageSize > 0 {
		return h.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

func (h *Handler) bufferSize() int {
	if h.BufferSize > 0 {
		return h.BufferSize
	}
	return DefaultBufferSize
}

func (h *Handler) dialTimeout() time.Duration {
	if h.DialTimeout > 0 {
		return h.DialTimeout
	}
	return DefaultDialTimeout
}

// refuse answers a request the bridge will not serve and logs why.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, why refuseReason, status int, msg string, err error) {
	h.refused.add(why)
	h.logger().Warn("bridge: request refused", "remote", remoteOf(r), "path", r.URL.Path, "status", status, "reason", err)
	http.Error(w, msg, status)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = h.withClientAddr(r)
	if err := h.checkClientCert(r); err != nil {
		h.refuse(w, r, reasonClientCert, http.StatusForbidden, "client certificate not allowed", err)
		return
	}
	if h.BasicAuth != nil && !h.BasicAuth.check(r) {
		h.refused.add(reasonAuth)
		h.logger().Warn("bridge: request refused", "remote", remoteOf(r), "path", r.URL.Path, "status", http.StatusUnauthorized, "reason", "basic auth failed")
		h.BasicAuth.challenge(w)
		return
	}
	if !isWebSocketRequest(r) {
		if h.Static != nil {
			h.Static.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this is a WebSocket bridge: connect with a WebSocket client", http.StatusUpgradeRequired)
		return
	}
	if err := h.checkOrigin(r); err != nil {
		h.refuse(w, r, reasonOrigin, http.StatusForbidden, "origin not allowed", err)
		return
	}
	if h.Resolver == nil {
		h.refuse(w, r, reasonConfig, http.StatusInternalServerError, "no target configured", errors.New("Handler.Resolver is nil"))
		return
	}
	if why, ok := h.reserve(); !ok {
		w.Header().Set("Retry-After", "5")
		h.refuse(w, r, why, http.StatusServiceUnavailable, "too many connections or shutting down", errors.New("connection limit reached or shutting down"))
		return
	}
	served := false
	defer func() {
		if !served {
			h.release()
		}
	}()

	target, err := h.Resolver.Resolve(r.Context(), r)
	if err != nil {
		why, status, msg := reasonLookup, http.StatusBadGateway, "target lookup failed"
		switch {
		case errors.Is(err, ErrNoToken):
			why, status, msg = reasonNoToken, http.StatusNotFound, "no token"
		case errors.Is(err, ErrUnknownToken):
			why, status, msg = reasonUnknownToken, http.StatusNotFound, "unknown token"
		case errors.Is(err, ErrTargetNotAllowed):
			why, status, msg = reasonTargetNotAllowed, http.StatusForbidden, "target not allowed"
		case errors.Is(err, ErrInvalidToken):
			why, status, msg = reasonInvalidToken, http.StatusForbidden, "invalid token"
		}
		h.refuse(w, r, why, status, msg, err)
		return
	}

	client, err := h.acceptClient(w, r)
	if err != nil {
		h.refused.add(reasonHandshake)
		h.logger().Warn("bridge: handshake failed", "remote", remoteOf(r), "path", r.URL.Path, "err", err)
		return
	}
	served = h.serveConn(r, client, target)
}

// serveConn dials the target and starts the relay. The connection is
// hijacked by now, so the relay runs on goroutines of its own and
// ServeHTTP returns: net/http's goroutine (with its deep stack) ends and
// the request's memory can be collected while the connection lives.
// Shutdown and Stats track the relay, not ServeHTTP. It reports whether
// the relay started; the relay releases the connection slot when it ends.
func (h *Handler) serveConn(r *http.Request, client clientConn, target Target) bool {
	start := time.Now()
	h.total.Add(1)
	id := h.ids.Add(1)
	log := h.logger().With("id", id, "remote", remoteOf(r), "target", target.String(),
		"protocol", client.protocol(), "subprotocol", client.Subprotocol())

	// The tap opens first, when the WebSocket has opened (as websockify
	// opens its recording before connecting to the target): recording
	// timestamps count from the handshake, and a failed dial still
	// leaves a (valid, empty) recording behind.
	var tap Tap
	var tapCloser interface{ Close() error }
	if h.OpenTap != nil {
		t, err := h.OpenTap(ConnInfo{ID: id, Remote: remoteOf(r), Target: target,
			Subprotocol: client.Subprotocol(), Protocol: client.protocol(), Request: r})
		if err != nil {
			log.Warn("bridge: tap failed, relaying without it", "err", err)
		} else if t != nil {
			tap = t
			tapCloser, _ = t.(interface{ Close() error })
		}
	}
	closeTap := func() {
		if tapCloser != nil {
			if err := tapCloser.Close(); err != nil {
				log.Warn("bridge: tap close failed", "err", err)
			}
		}
	}

	dialStart := time.Now()
	tc, err := h.dialTarget(target, r)
	h.metrics.observeDial(time.Since(dialStart))
	if err != nil {
		h.failed.Add(1)
		h.metrics.countClose(websocket.StatusInternalError)
		client.closeWith(websocket.StatusInternalError, "target unreachable")
		log.Warn("bridge: target dial failed", "err", err, "close_code", int(websocket.StatusInternalError),
			"close_reason", "target unreachable", "duration", time.Since(start))
		closeTap()
		return false
	}

	h.metrics.relayed.Add(1)
	rl := &relay{client: client, target: tc, bufSize: h.bufferSize(), tap: tap}
	if !h.track(id, rl) {
		// Shutdown's deadline passed between reserve and now.
		rl.abort(websocket.StatusGoingAway, "bridge shutting down", nil)
	}
	go func() {
		defer h.release()
		h.relayConn(id, rl, log, start)
		closeTap()
	}()
	return true
}

// relayConn runs the relay with its heartbeat and idle timeout, then logs
// how the connection ended.
func (h *Handler) relayConn(id uint64, rl *relay, log *slog.Logger, start time.Time) {
	defer h.untrack(id, rl)
	w := h.watch(rl)
	res := rl.run()
	w.stop()
	h.metrics.countClose(res.status)
	h.metrics.observeDuration(time.Since(start))

	attrs := []any{"from_client", res.fromClient, "to_client", res.toClient,
		"duration", time.Since(start), "ended_by", res.endedBy}
	if res.close.code != 0 {
		attrs = append(attrs, "close_code", int(res.close.code), "close_reason", res.close.reason)
	}
	if res.err != nil {
		attrs = append(attrs, "err", res.err)
	}
	log.Log(context.Background(), res.level, "bridge: connection closed", attrs...)
}

// dialTarget connects to t, sends the PROXY header when
// TargetProxyProtocol is set (r gives the addresses), then TLS when
// TargetTLS is set, all within DialTimeout.
func (h *Handler) dialTarget(t Target, r *http.Request) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.dialTimeout())
	defer cancel()
	dial := h.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	c, err := dial(ctx, t.network(), t.Address)
	if err != nil {
		return nil, err
	}
	// Go turns TCP_NODELAY on for every TCP connection, the client's
	// (accepted by http.Server) included; a custom Dial may not have.
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true)
	}
	if err := h.sendTargetProxyHeader(ctx, c, r); err != nil {
		c.Close()
		return nil, err
	}
	if h.TargetTLS == nil {
		return c, nil
	}
	cfg := h.TargetTLS.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = t.ServerName
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(t.Address); err == nil {
				cfg.ServerName = host
			}
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls to target: %w", err)
	}
	return tc, nil
}
