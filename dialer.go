package wsproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/httpauth"
	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// A Dialer opens WebSocket connections, and raw TCP tunnels, through the
// HTTP proxy that the settings in force choose for each target. The zero
// Dialer is ready to use: it finds the proxy in the order ProxyForURL
// documents (the environment, then the operating system's settings with
// PAC and WPAD), answers proxy challenges with the credentials the
// Credentials field's order finds, and uses the defaults named on each
// field.
//
// A Dialer is safe for concurrent use. Do not change its fields while dials
// are under way.
type Dialer struct {
	// Proxy chooses the proxy for a request; it has the signature of
	// http.Transport.Proxy, so http.ProxyURL and http.ProxyFromEnvironment
	// plug in. The request's URL has the scheme mapped: ws to http, wss to
	// https. Return nil for a direct connection. When Proxy is nil, the
	// other sources decide in the order ProxyForURL documents.
	//
	// Supported proxy URL schemes: http (CONNECT over TCP; the default when
	// the URL has none, default port 80), https (CONNECT inside TLS to the
	// proxy, default port 443), socks5 and socks5h (default port 1080;
	// socks5 resolves the target's name locally, socks5h at the proxy).
	Proxy func(*http.Request) (*url.URL, error)

	// ProxyConnectHeader is added to every CONNECT request. Its
	// Proxy-Authorization, if any, is sent as is, before any challenge.
	// Headers that would break the exchange (Host, Content-Length,
	// Transfer-Encoding, Connection other than keep-alive, CR or LF) fail
	// the dial before anything is sent: see CheckProxyConnectHeader.
	ProxyConnectHeader http.Header

	// Credentials is asked for a user name and password when the proxy
	// answers 407, the proxy URL carries none and none cached for the
	// proxy and realm worked. It returns nil (and a nil error) when it has
	// none; an error aborts the dial. It may be called concurrently from
	// several dials.
	//
	// Proxy credentials come from these sources, in order:
	//
	//  1. the proxy URL's userinfo (http://user:pass@proxy:3128). When
	//     present it is the only source: a proxy that refuses it fails
	//     the dial;
	//  2. the Dialer's cache of what worked for this proxy and realm in an
	//     earlier dial (in memory, see ForgetCredentials);
	//  3. Credentials, given the scheme, realm and proxy;
	//  4. a netrc file, when UseNetrc is set (like curl's --netrc).
	//
	// Each source is asked at most once per scheme in a dial; for
	// Negotiate, only when no Kerberos ticket can be had (NegotiateAuth
	// says how a password becomes a ticket). Credentials the proxy
	// refuses are dropped from the cache and not sent again in that dial;
	// the next source is tried, and when none is left the dial fails with
	// ErrProxyCredentialsRejected.
	//
	// No password in cleartext before the proxy asks for Basic: a password
	// is sent as Basic only after this proxy offered Basic, either in a
	// 407 of this dial or in an earlier dial where Basic succeeded for this
	// proxy and realm (later dials then send it with the first CONNECT and
	// cost no extra round trip), or when AuthSchemes is BasicAuth alone,
	// which sends the proxy URL's credentials with the first CONNECT. A
	// proxy that offers only NTLM, Digest or Negotiate never sees the
	// password in Basic form. A Proxy-Authorization in ProxyConnectHeader
	// is the caller's own and is sent as is.
	Credentials func(ctx context.Context, req *CredentialsRequest) (*Credentials, error)

	// UseNetrc makes the Dialer look for proxy credentials in a netrc
	// file (machine = the proxy's host name), after the other sources,
	// like curl's --netrc. Off by default.
	UseNetrc bool

	// NetrcFile is the file UseNetrc reads. Empty means $NETRC, else
	// ~/.netrc (on Windows ~/_netrc when ~/.netrc does not exist). A
	// missing file means no credentials.
	NetrcFile string

	// AuthSchemes are the schemes the Dialer may answer challenges with.
	// When a proxy offers several, the strongest allowed one wins (see
	// AuthScheme.Strength). Nil means DefaultAuthSchemes(): Negotiate,
	// Digest, NTLM and Basic. A scheme that cannot start (Negotiate
	// without a Kerberos ticket) gives way to the next one offered.
	// Listing schemes restricts the Dialer to exactly those: it never
	// falls back to another. When Basic is sent before a challenge is the
	// cleartext rule on Credentials.
	AuthSchemes []AuthScheme

	// ProxySPN is the proxy's Kerberos service principal for Negotiate
	// (see NegotiateAuth), as "HTTP/proxy.example.com" or with "@REALM",
	// for a proxy whose URL names it otherwise (an IP address, an alias).
	// Empty means "HTTP/" + the proxy host as written in the proxy URL. A
	// NegotiateAuth with its own SPN set takes that one instead. When the
	// SPN is wrong the proxy refuses the ticket and the dial fails with
	// ErrKerberosRejected, naming the SPN it tried.
	ProxySPN string // Negotiate: the SPN override

	// TLSClientConfig configures TLS to wss:// targets. ServerName defaults
	// to the target's host, MinVersion to TLS 1.2; NextProtos is always
	// http/1.1 (the WebSocket handshake needs HTTP/1.1). Nil means defaults.
	TLSClientConfig *tls.Config

	// ProxyTLSConfig configures TLS to https:// proxies, as TLSClientConfig
	// does for targets. Nil means defaults.
	ProxyTLSConfig *tls.Config

	// NetDial opens TCP connections to proxies and, for direct connections,
	// to targets. Nil means a net.Dialer with a 30 s timeout and keep-alives.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// ConnectTimeout bounds the whole proxy negotiation of one dial: the
	// TCP connections to the proxy, every CONNECT round and 407 retry. Zero
	// means DefaultConnectTimeout (30 s). The dial's context still applies.
	ConnectTimeout time.Duration

	// MaxResponseHeaderBytes caps each proxy response header. Zero means
	// DefaultMaxResponseHeaderBytes (64 KiB).
	MaxResponseHeaderBytes int

	// MaxAuthRounds caps the 407 answers one dial may send. Zero means 4,
	// enough for a three-leg NTLM handshake after a first bare 407.
	MaxAuthRounds int

	// UserAgent is sent on CONNECT requests. Empty means "wsproxy".
	UserAgent string

	// Logf, when set, receives a trace of each dial: the proxy chosen and
	// why, the CONNECT exchange with credentials redacted, and the scheme
	// chosen for each challenge. Lines carry no trailing newline.
	Logf func(format string, args ...any)

	// hooks replace the environment, the OS settings, DNS and the clock
	// in tests; nil in normal use.
	hooks *testHooks

	// auth is the store of what worked at each proxy (see authStore).
	auth *httpauth.Store
}

// DefaultDialer is used by the package-level Dial.
var DefaultDialer = &Dialer{}

// Dial opens a WebSocket connection to rawURL with DefaultDialer. See
// (*Dialer).Dial.
func Dial(ctx context.Context, rawURL string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	return DefaultDialer.Dial(ctx, rawURL, opts)
}

// Dial opens a WebSocket connection to rawURL (ws:// or wss://): it chooses
// a proxy, opens a CONNECT tunnel through it (answering 407 challenges), runs
// TLS inside the tunnel for wss://, then the WebSocket handshake with
// github.com/coder/websocket.
//
// opts passes through to websocket.Dial (headers, subprotocols,
// compression) and may be nil. opts.HTTPClient must be nil: the Dialer
// supplies the transport. A Proxy-Authorization header in opts.HTTPHeader is
// dropped, so proxy credentials never reach the target.
//
// The returned response is the target's handshake response, as from
// websocket.Dial. Proxy failures are *ProxyError values (use errors.As);
// errors.Is reports ErrProxyAuthRequired or ErrProxyCredentialsRejected for
// authentication failures. No error contains a password.
func (d *Dialer) Dial(ctx context.Context, rawURL string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("wsproxy: invalid URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http", "https":
		u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	default:
		return nil, nil, fmt.Errorf("wsproxy: unsupported URL scheme %q (want ws or wss)", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, nil, errors.New("wsproxy: URL has no host")
	}
	var o websocket.DialOptions
	if opts != nil {
		if opts.HTTPClient != nil {
			return nil, nil, errors.New("wsproxy: DialOptions.HTTPClient must be nil; the Dialer supplies the transport")
		}
		o = *opts
		if o.HTTPHeader != nil {
			o.HTTPHeader = o.HTTPHeader.Clone()
			o.HTTPHeader.Del("Proxy-Authorization")
		}
	}
	target := targetAddr(u)
	d.logf("dial %s (tunnel to %s)", u.Redacted(), target)

	// Open the tunnel (and TLS inside it) before the handshake, so that proxy
	// errors come back as they are rather than wrapped by the HTTP client.
	// Under TLS, writes are coalesced until the handshake's answer arrives
	// (see coalesceConn).
	var coalesce *coalesceConn
	first, err := d.dialTarget(ctx, u, target, &coalesce)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Mutex
	take := func(addr string) net.Conn {
		once.Lock()
		defer once.Unlock()
		if c := first; c != nil && addr == target {
			first = nil
			return c
		}
		return nil
	}
	// A redirect may ask for another address: dial it the same way.
	dialAgain := func(ctx context.Context, scheme, addr string) (net.Conn, error) {
		if c := take(addr); c != nil {
			return c, nil
		}
		return d.dialTarget(ctx, &url.URL{Scheme: scheme, Host: addr}, addr, nil)
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialAgain(ctx, "ws", addr)
		},
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialAgain(ctx, "wss", addr)
		},
		MaxResponseHeaderBytes: int64(d.maxHeader()),
	}
	o.HTTPClient = &http.Client{Transport: tr}
	conn, resp, err := websocket.Dial(ctx, u.String(), &o)
	tr.CloseIdleConnections()
	if c := take(target); c != nil { // the handshake never used it
		c.Close()
	}
	if err != nil {
		return nil, resp, fmt.Errorf("wsproxy: WebSocket handshake with %s: %w", u.Redacted(), err)
	}
	if coalesce != nil {
		if err := coalesce.stop(); err != nil {
			conn.CloseNow()
			return nil, resp, fmt.Errorf("wsproxy: WebSocket handshake with %s: %w", u.Redacted(), err)
		}
	}
	if sp := conn.Subprotocol(); sp != "" {
		d.logf("WebSocket open: %s, subprotocol %s", resp.Status, sp)
	} else {
		d.logf("WebSocket open: %s", resp.Status)
	}
	return conn, resp, nil
}

// DialContext opens a raw TCP tunnel to addr ("host:port") through the
// proxy chosen for it, for any protocol. It fits http.Transport.DialContext
// and similar hooks. The proxy is chosen as for an http:// URL when the port
// is 80, and as for https:// otherwise. network must be "tcp", "tcp4" or
// "tcp6" (the proxy decides the address family of the tunnel).
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("wsproxy: network %q not supported (tcp only)", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("wsproxy: invalid address %q: %w", addr, err)
	}
	scheme := "https"
	if port == "80" {
		scheme = "http"
	}
	target := net.JoinHostPort(host, port)
	return d.dialTunnel(ctx, &url.URL{Scheme: scheme, Host: target}, target)
}

// dialTarget opens the tunnel to target and, for wss, TLS inside it. When
// coalesce is not nil, TLS runs over a coalesceConn, stored there for the
// caller to stop once the WebSocket handshake is done.
func (d *Dialer) dialTarget(ctx context.Context, u *url.URL, target string, coalesce **coalesceConn) (net.Conn, error) {
	c, err := d.dialTunnel(ctx, u, target)
	if err != nil || u.Scheme != "wss" {
		return c, err
	}
	host, _, _ := net.SplitHostPort(target)
	under := c
	if coalesce != nil {
		*coalesce = &coalesceConn{Conn: c}
		under = *coalesce
	}
	tc := tls.Client(under, tlsConfig(d.TLSClientConfig, host))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("wsproxy: TLS handshake with %s: %w", target, err)
	}
	if coalesce != nil {
		(*coalesce).handshakeDone()
	}
	d.logf("TLS with %s established (%s)", target, tls.VersionName(tc.ConnectionState().Version))
	return tc, nil
}

// dialTunnel returns a connection to target: direct, or through the
// proxies decided for u, tried in order while each cannot be reached.
func (d *Dialer) dialTunnel(ctx context.Context, u *url.URL, target string) (net.Conn, error) {
	dec, err := d.decide(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("wsproxy: choose proxy for %s: %w", u.Redacted(), err)
	}
	d.logf("proxy for %s: %s", target, dec)
	var errs []error
	for i, proxy := range dec.Proxies {
		c, err := d.dialVia(ctx, proxy, target)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if i == len(dec.Proxies)-1 || !canFailOver(ctx, err) {
			break
		}
		d.logf("%s cannot be reached (%v): trying the next one", proxyurl.Redact(proxy), err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("wsproxy: every proxy failed (%s): %w", proxyList(dec.Proxies), errors.Join(errs...))
}

// dialVia opens a connection to target through one proxy, nil for direct.
func (d *Dialer) dialVia(ctx context.Context, proxy *url.URL, target string) (net.Conn, error) {
	if proxy == nil {
		d.logf("connecting directly to %s", target)
		c, err := d.netDial(ctx, "tcp", target)
		if err != nil {
			return nil, fmt.Errorf("wsproxy: dial %s: %w", target, err)
		}
		return c, nil
	}
	switch proxy.Scheme {
	case "http", "https":
		return d.connect(ctx, proxy, target)
	case "socks5", "socks5h":
		return d.dialSOCKS(ctx, proxy, target)
	default:
		return nil, fmt.Errorf("wsproxy: proxy %s: unsupported proxy scheme %q", proxyurl.Redact(proxy), proxy.Scheme)
	}
}

// targetAddr returns the CONNECT authority for u: host:port with the default
// port made explicit and IPv6 literals in brackets.
func targetAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" || u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// tlsConfig clones base (or starts empty) with the settings every TLS
// connection of the Dialer needs.
func tlsConfig(base *tls.Config, serverName string) *tls.Config {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = strings.Trim(serverName, "[]")
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

var defaultNetDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

func (d *Dialer) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.NetDial != nil {
		return d.NetDial(ctx, network, addr)
	}
	return defaultNetDialer.DialContext(ctx, network, addr)
}

func (d *Dialer) connectTimeout() time.Duration {
	if d.ConnectTimeout > 0 {
		return d.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (d *Dialer) maxHeader() int {
	if d.MaxResponseHeaderBytes > 0 {
		return d.MaxResponseHeaderBytes
	}
	return DefaultMaxResponseHeaderBytes
}

func (d *Dialer) maxAuthRounds() int {
	if d.MaxAuthRounds > 0 {
		return d.MaxAuthRounds
	}
	return 4
}

func (d *Dialer) userAgent() string {
	if d.UserAgent != "" {
		return d.UserAgent
	}
	return "wsproxy"
}

func (d *Dialer) schemes() []AuthScheme {
	if d.AuthSchemes != nil {
		return d.AuthSchemes
	}
	return DefaultAuthSchemes()
}

func (d *Dialer) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// coalesceConn makes the last flight of a TLS handshake leave in one
// segment with the first write after it (the HTTP upgrade request).
// Without it they leave as two small segments, and a proxy that relays
// them with Nagle's algorithm on (tinyproxy does) holds the second until
// the target's delayed ACK, about 40 ms later on Linux; sent together
// they cross the proxy together.
//
// During the handshake (one goroutine writes, then reads), writes are held
// and each Read sends them first. After handshakeDone, what is held waits
// for the next write and leaves with it, or leaves alone after
// coalesceWait if no write comes; from then on writes pass through.
type coalesceConn struct {
	net.Conn
	mu      sync.Mutex
	held    []byte
	passing bool        // writes go straight through
	after   bool        // the handshake is done: a write or the timer sends held
	timer   *time.Timer // sends held if no write comes after the handshake
}

// coalesceWait bounds how long the handshake's last flight may wait for
// the request to join it.
const coalesceWait = 5 * time.Millisecond

func (c *coalesceConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passing {
		return c.Conn.Write(p)
	}
	if c.after {
		c.passing = true
		c.timer.Stop()
		held := append(c.held, p...)
		c.held = nil
		if _, err := c.Conn.Write(held); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

func (c *coalesceConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	var err error
	if !c.after {
		err = c.flushLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *coalesceConn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// handshakeDone lets the held flight wait for the next write.
func (c *coalesceConn) handshakeDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passing || len(c.held) == 0 {
		c.passing = true
		return
	}
	c.after = true
	c.timer = time.AfterFunc(coalesceWait, func() { _ = c.stop() })
}

// stop sends anything held and passes writes through from now on. A write
// error here shows again on the connection's next write.
func (c *coalesceConn) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.passing = true
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.flushLocked()
}
