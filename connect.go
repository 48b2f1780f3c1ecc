package wsproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/proxy"

	"github.com/wsproxy/wsproxy/internal/httpauth"
	"github.com/wsproxy/wsproxy/internal/proxyurl"
)

// Defaults for the CONNECT exchange. Each can be changed on a Dialer.
const (
	// DefaultConnectTimeout bounds one CONNECT exchange (all 407 rounds
	// included) when Dialer.ConnectTimeout is zero.
	DefaultConnectTimeout = 30 * time.Second

	// DefaultMaxResponseHeaderBytes caps the size of the proxy's response
	// header when Dialer.MaxResponseHeaderBytes is zero.
	DefaultMaxResponseHeaderBytes = 64 << 10

	// maxErrorBody is how much of a non-2xx response body a ProxyError keeps.
	maxErrorBody = 1 << 10

	// maxDrainBody is how much of a 407 body is read to keep the connection
	// for the next round; a larger body means a new connection.
	maxDrainBody = 64 << 10

	// refusalBodyWait is how long the body of a refusal that ends the
	// exchange (any non-2xx answer but a keep-alive 407) is waited for
	// beyond what has already arrived.
	refusalBodyWait = 100 * time.Millisecond
)

// Errors a ProxyError can wrap. Test for them with errors.Is.
var (
	// ErrProxyAuthRequired means the proxy answered 407 and no credentials
	// were available for any scheme it offered.
	ErrProxyAuthRequired = errors.New("proxy authentication required")

	// ErrProxyCredentialsRejected means credentials were sent and the proxy
	// refused them (a second 407, or a 401 as tinyproxy answers).
	ErrProxyCredentialsRejected = httpauth.ErrRejected

	// ErrResponseHeaderTooLarge means the proxy's response header exceeded
	// Dialer.MaxResponseHeaderBytes.
	ErrResponseHeaderTooLarge = errors.New("proxy response header too large")
)

// ProxyError reports a CONNECT request the proxy did not accept: any status
// other than 2xx, or a response that could not be parsed. Use errors.As to
// get at it. It never holds credentials: Proxy is redacted and the request
// header that carried them is not kept.
type ProxyError struct {
	Proxy      string      // proxy URL, password redacted
	Target     string      // the CONNECT authority, host:port
	StatusCode int         // 0 when no valid status line was read
	Status     string      // status text, e.g. "Proxy Authentication Required"
	Header     http.Header // response header, nil when none was read
	Body       []byte      // up to 1 KiB of the response body
	Err        error       // the cause: a sentinel above or an I/O or parse error
}

func (e *ProxyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proxy %s: CONNECT %s: ", e.Proxy, e.Target)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, e.Status)
		if e.Err != nil {
			b.WriteString(": ")
		}
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ProxyError) Unwrap() error { return e.Err }

// aLongTimeAgo is a deadline in the past, used to unblock pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// proxyConn is one TCP (or TLS) connection to a proxy, with the reader that
// parses its answers. The limit caps each response header separately.
type proxyConn struct {
	conn  net.Conn
	src   *eofReader
	limit *io.LimitedReader
	br    *bufio.Reader
	max   int64
}

func newProxyConn(c net.Conn, maxHeader int) *proxyConn {
	src := &eofReader{r: c}
	lr := &io.LimitedReader{R: src, N: int64(maxHeader)}
	return &proxyConn{conn: c, src: src, limit: lr, br: bufio.NewReaderSize(lr, 4096), max: int64(maxHeader)}
}

// eofReader remembers whether the connection reached its end, so that a
// header cut short is reported as such and not as a syntax error.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// connectRequest builds the CONNECT request for target (host:port).
func connectRequest(target, userAgent string, extra http.Header, proxyAuth string) *http.Request {
	h := make(http.Header, len(extra)+3)
	for k, v := range extra {
		h[k] = append([]string(nil), v...)
	}
	if userAgent != "" && h.Get("User-Agent") == "" {
		h.Set("User-Agent", userAgent)
	}
	if h.Get("Proxy-Connection") == "" {
		h.Set("Proxy-Connection", "Keep-Alive")
	}
	if proxyAuth != "" {
		h.Set("Proxy-Authorization", proxyAuth)
	}
	return &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: h,
		Proto:  "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
}

// writeConnect writes the CONNECT request line and header. It refuses
// targets with white space or CR/LF, and headers CheckProxyConnectHeader
// refuses (request smuggling, a broken exchange).
func writeConnect(w io.Writer, req *http.Request) error {
	if strings.ContainsAny(req.Host, "\r\n \t") {
		return fmt.Errorf("invalid CONNECT target %q", req.Host)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", req.Host, req.Host)
	for _, k := range sortedKeys(req.Header) {
		for _, v := range req.Header[k] {
			if err := CheckProxyConnectHeader(k, v); err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// A ConnectHeaderError says why a header cannot go in a CONNECT request
// (see CheckProxyConnectHeader). It names the header, never its value,
// which may be a credential.
type ConnectHeaderError struct {
	Name string // the header's name
	// Problem is "invalid name", "invalid value" (a control character
	// such as CR or LF), "refused" (Host, Content-Length,
	// Transfer-Encoding) or "keep-alive only" (Connection with another
	// token).
	Problem string
}

func (e *ConnectHeaderError) Error() string {
	switch e.Problem {
	case "invalid name":
		return fmt.Sprintf("wsproxy: invalid CONNECT header name %q", e.Name)
	case "invalid value":
		return fmt.Sprintf("wsproxy: invalid value for CONNECT header %s: contains CR or LF or another control character", e.Name)
	case "keep-alive only":
		return "wsproxy: CONNECT header Connection is refused unless its value is keep-alive: other tokens would end or alter the connection the proxy authentication runs on"
	}
	return fmt.Sprintf("wsproxy: CONNECT header %s is refused: it would break the CONNECT exchange with the proxy", e.Name)
}

// CheckProxyConnectHeader reports, as a *ConnectHeaderError, why name:
// value cannot go in a CONNECT request, or nil when it can. Refused: a
// name or value HTTP does not allow (CR and LF above all: request
// smuggling), Host (the Dialer writes the CONNECT authority),
// Content-Length and Transfer-Encoding (a CONNECT has no body; the proxy
// would wait for one or read the next request as one), and Connection
// with any token but keep-alive (close would end the connection an NTLM
// handshake needs). Dialer.ProxyConnectHeader is checked with it before
// anything is sent.
func CheckProxyConnectHeader(name, value string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return &ConnectHeaderError{Name: name, Problem: "invalid name"}
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return &ConnectHeaderError{Name: name, Problem: "invalid value"}
	}
	switch k := textproto.CanonicalMIMEHeaderKey(name); k {
	case "Host", "Content-Length", "Transfer-Encoding":
		return &ConnectHeaderError{Name: k, Problem: "refused"}
	case "Connection":
		for _, tok := range strings.Split(value, ",") {
			if !strings.EqualFold(textproto.TrimString(tok), "keep-alive") {
				return &ConnectHeaderError{Name: k, Problem: "keep-alive only"}
			}
		}
	}
	return nil
}

// readResponse reads one response header from the proxy under the size cap.
// It does not touch the body.
func (pc *proxyConn) readResponse(req *http.Request) (*http.Response, error) {
	pc.limit.N = pc.max
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		if pc.limit.N <= 0 {
			return nil, ErrResponseHeaderTooLarge
		}
		if pc.src.eof || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("proxy closed the connection before a complete response header: %w", io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("malformed proxy response: %w", err)
	}
	// Lift the cap for whatever follows the header (a body, or the tunnel
	// bytes already sent by the target).
	pc.limit.N = 1<<62 - 1
	return resp, nil
}

// drainBody reads a non-2xx body so the connection can carry the next
// request. It reports whether the connection is reusable, and returns up to
// 1 KiB of the body for error messages.
func drainBody(resp *http.Response) (head []byte, reusable bool) {
	if resp.Body == nil {
		return nil, !resp.Close
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, maxDrainBody+1)
	buf := make([]byte, 0, 512)
	var total int64
	chunk := make([]byte, 4096)
	for {
		n, err := lr.Read(chunk)
		if n > 0 {
			if len(buf) < maxErrorBody {
				buf = append(buf, chunk[:min(n, maxErrorBody-len(buf))]...)
			}
			total += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, false
		}
	}
	// An unframed body (no length, not chunked) ends at close: not reusable.
	framed := resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0
	return buf, framed && total <= maxDrainBody && !resp.Close
}

// tunnel returns the connection as the tunnel, with any bytes the proxy sent
// after its response header (the target's first bytes) read first.
func (pc *proxyConn) tunnel() net.Conn {
	n := pc.br.Buffered()
	if n == 0 {
		return pc.conn
	}
	early, _ := pc.br.Peek(n)
	return &prefixConn{Conn: pc.conn, prefix: append([]byte(nil), early...)}
}

// prefixConn is a net.Conn whose first reads return prefix.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the tunnel when the underlying connection can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("wsproxy: connection does not support CloseWrite")
}

// withDeadline arranges for conn's pending I/O to fail when ctx ends or
// timeout passes. The returned function undoes it and reports ctx's error if
// the context ended first.
func withDeadline(ctx context.Context, conn net.Conn, timeout time.Duration) func() error {
	if timeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(timeout))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	return func() error {
		if !stop() && ctx.Err() != nil {
			return ctx.Err()
		}
		_ = conn.SetDeadline(time.Time{})
		return nil
	}
}

// connect opens a CONNECT tunnel to target through an http or https proxy,
// answering 407 challenges. It may use several connections to the proxy
// (when one closes after a 407) but returns at most one.
func (d *Dialer) connect(ctx context.Context, proxy *url.URL, target string) (_ net.Conn, err error) {
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, d.connectTimeout())
	defer cancel()
	shown := proxyurl.Redact(proxy)
	fail := func(resp *http.Response, body []byte, cause error) *ProxyError {
		e := &ProxyError{Proxy: shown, Target: target, Body: body, Err: cause}
		if resp != nil {
			e.StatusCode = resp.StatusCode
			_, e.Status, _ = strings.Cut(resp.Status, " ")
			e.Header = resp.Header
		}
		return e
	}
	for k, vs := range d.ProxyConnectHeader {
		for _, v := range vs {
			if err := CheckProxyConnectHeader(k, v); err != nil {
				return nil, fail(nil, nil, err) // before anything is sent
			}
		}
	}

	a := d.newAuthState(proxy, target)
	defer a.close() // releases what the session holds (SSPI handles)
	// cause explains an I/O error that a context caused.
	cause := func(err error) error {
		switch {
		case outer.Err() != nil:
			return outer.Err()
		case ctx.Err() != nil:
			return fmt.Errorf("no answer within the connect timeout (%v): %w", d.connectTimeout(), context.DeadlineExceeded)
		}
		return err
	}
	var pc *proxyConn
	defer func() {
		if err != nil && pc != nil {
			pc.conn.Close()
		}
	}()
	for round := 0; ; round++ {
		if pc == nil {
			c, err := d.dialProxy(ctx, proxy)
			if err != nil {
				return nil, fail(nil, nil, cause(err))
			}
			pc = newProxyConn(c, d.maxHeader())
		}
		req := connectRequest(target, d.userAgent(), d.ProxyConnectHeader, a.header())
		d.traceRequest(req)
		resp, err := pc.roundTrip(ctx, req)
		if err != nil {
			return nil, fail(nil, nil, cause(err))
		}
		d.logf("<- %s %s", resp.Proto, resp.Status)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if err := a.verifySuccess(resp.Header); err != nil { // Negotiate: mutual authentication
				return nil, fail(resp, nil, err)
			}
			a.succeeded()
			d.logf("tunnel to %s open", target)
			return pc.tunnel(), nil
		}
		body, reusable := pc.readRefusal(ctx, resp)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && a.sent():
			// tinyproxy answers a wrong password with 401.
			return nil, fail(resp, body, a.rejected())
		case resp.StatusCode != http.StatusProxyAuthRequired:
			return nil, fail(resp, body, nil)
		}
		if round+1 >= d.maxAuthRounds() {
			return nil, fail(resp, body, fmt.Errorf("gave up after %d authentication rounds: %w", round+1, ErrProxyCredentialsRejected))
		}
		challenges, perr := ParseChallenges(resp.Header.Values("Proxy-Authenticate"))
		if perr != nil {
			d.logf("auth: unusable challenge: %v", perr)
		}
		sameConn, err := a.next(ctx, challenges, perr)
		if err != nil {
			return nil, fail(resp, body, err)
		}
		if !reusable {
			if sameConn {
				return nil, fail(resp, body, fmt.Errorf("proxy closed the connection in the middle of the %s handshake, which needs one connection", a.schemeName()))
			}
			d.logf("proxy closed the connection after 407: retrying on a new one")
			pc.conn.Close()
			pc = nil
		} else {
			d.logf("retrying on the same connection")
		}
	}
}

// roundTrip sends req and reads the response header, skipping interim
// answers. It does not touch the body. Cancelling ctx unblocks it at once.
func (pc *proxyConn) roundTrip(ctx context.Context, req *http.Request) (resp *http.Response, err error) {
	restore := withDeadline(ctx, pc.conn, 0)
	defer func() {
		if cerr := restore(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := writeConnect(pc.conn, req); err != nil {
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	resp, err = pc.readResponse(req)
	// Skip interim answers (100 Continue, 102 Processing) a proxy may send
	// before the real one; a few at most.
	for n := 0; err == nil && resp.StatusCode/100 == 1 && resp.StatusCode != http.StatusSwitchingProtocols && n < 5; n++ {
		resp, err = pc.readResponse(req)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// readRefusal reads the body of a non-2xx answer, keeping up to 1 KiB for
// the error, and reports whether the connection can carry another CONNECT.
// Only an answer that keeps the connection (a framed body and no
// Connection: close) and that the caller will answer on it (a 407) is read
// to its end, within ctx. Any other answer ends the exchange on this
// connection, and a proxy may send Connection: close with no body length
// and leave the socket open: of such a body only what has already arrived
// is kept, waiting at most refusalBodyWait for more.
func (pc *proxyConn) readRefusal(ctx context.Context, resp *http.Response) (body []byte, reusable bool) {
	framed := resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0
	if resp.StatusCode == http.StatusProxyAuthRequired && framed && !resp.Close {
		restore := withDeadline(ctx, pc.conn, 0)
		body, reusable = drainBody(resp)
		if restore() != nil {
			reusable = false
		}
		return body, reusable
	}
	deadline := time.Now().Add(refusalBodyWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = pc.conn.SetReadDeadline(deadline)
	return skimBody(resp), false
}

// skimBody returns up to maxErrorBody bytes of resp's body, stopping at the
// first read error (the deadline the caller set, or the end of the body).
func skimBody(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	buf := make([]byte, 0, maxErrorBody)
	for len(buf) < cap(buf) {
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	return buf
}

// dialProxy opens a connection to the proxy, with TLS for https proxies.
func (d *Dialer) dialProxy(ctx context.Context, proxy *url.URL) (net.Conn, error) {
	port := proxy.Port()
	if port == "" {
		port = "80"
		if proxy.Scheme == "https" {
			port = "443"
		}
	}
	addr := net.JoinHostPort(proxy.Hostname(), port)
	c, err := d.netDial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to proxy: %w", err)
	}
	if proxy.Scheme != "https" {
		return c, nil
	}
	tc := tls.Client(c, tlsConfig(d.ProxyTLSConfig, proxy.Hostname()))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with proxy: %w", err)
	}
	return tc, nil
}

// traceRequest logs a CONNECT request with credentials redacted.
func (d *Dialer) traceRequest(req *http.Request) {
	if d.Logf == nil {
		return
	}
	d.logf("-> CONNECT %s HTTP/1.1", req.Host)
	for _, k := range sortedKeys(req.Header) {
		for _, v := range req.Header[k] {
			d.logf("-> %s: %s", k, redactHeaderValue(k, v))
		}
	}
}

// sortedKeys orders header names so requests and traces are reproducible.
func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

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
		pass, _ := p.User.Password()
		auth = &proxy.Auth{User: p.User.Username(), Password: pass}
	}
	if p.Scheme == "socks5" {
		host, port, _ := net.SplitHostPort(target)
		if net.ParseIP(host) == nil {
			ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil || len(ips) == 0 {
				return nil, &ProxyError{Proxy: proxyurl.Redact(p), Target: target, Err: fmt.Errorf("resolve target locally (use socks5h:// to resolve at the proxy): %w", err)}
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
		return nil, &ProxyError{Proxy: proxyurl.Redact(p), Target: target, Err: err}
	}
	d.logf("SOCKS5 %s: CONNECT %s", proxyurl.Redact(p), target)
	c, err := sd.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err != nil {
		if reached.Load() && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errSOCKSAnswered, err)
		}
		return nil, &ProxyError{Proxy: proxyurl.Redact(p), Target: target, Err: fmt.Errorf("SOCKS5: %w", err)}
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
