// Package proxytest runs an in-process HTTP CONNECT proxy for tests. It can
// require Basic credentials, answer 407 with keep-alive or close, answer a
// wrong password with 401 as tinyproxy does, send the target's first bytes
// in the same segment as its 200, stall, or hand a connection to a custom
// function that misbehaves on purpose.
package proxytest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Config says how the proxy behaves. The zero Config is an open proxy that
// tunnels to any target.
type Config struct {
	// Username and Password, when Username is set, are required as Basic
	// credentials.
	Username, Password string
	// Realm is the Basic realm in challenges. Default "proxytest".
	Realm string
	// Challenges replaces the Proxy-Authenticate values of a 407; nil
	// means one Basic challenge. An empty non-nil slice sends none.
	Challenges []string
	// CloseAfter407 answers 407 with Connection: close and closes, like
	// tinyproxy; otherwise the 407 is keep-alive with a Content-Length body,
	// like squid, and the next CONNECT may follow on the same connection.
	CloseAfter407 bool
	// WrongPasswordStatus is the status for credentials that do not match:
	// 407 (default) or 401, as tinyproxy answers.
	WrongPasswordStatus int
	// CoalesceFirstBytes waits up to this long for the target's first bytes
	// and sends them in the same write as the 200 response.
	CoalesceFirstBytes time.Duration
	// HTTP10 answers with HTTP/1.0 status lines.
	HTTP10 bool
	// TargetReset makes the proxy reset the connection (TCP RST) right
	// after the first bytes from the target have been relayed.
	TargetReset bool
	// Stall accepts connections and never answers.
	Stall bool
	// TLS, when set, makes this an HTTPS proxy: clients speak TLS to it
	// and send CONNECT inside.
	TLS *tls.Config
	// Handle, when set, takes over each connection after its request
	// header is read: it writes whatever it likes. The proxy closes conn
	// when Handle returns.
	Handle func(conn net.Conn, req *http.Request)
	// Auth, when set, replaces the Basic check (Username, Password,
	// Challenges and WrongPasswordStatus are then unused); see Digest and
	// NTLM.
	Auth Authenticator
}

// Authenticator checks the credentials of each CONNECT request.
type Authenticator interface {
	// Authenticate returns ok to open the tunnel, or the status (407 or
	// 401) and the challenges to answer with. conn is the state of the
	// client connection, for schemes that authenticate a connection.
	Authenticate(req *http.Request, conn *ConnState) (ok bool, status int, challenges []string)
}

// ConnState is per-connection state an Authenticator may keep.
type ConnState struct {
	Value any
}

// Proxy is a running test proxy.
type Proxy struct {
	Addr string   // "127.0.0.1:port"
	URL  *url.URL // http://Addr, without credentials

	cfg      Config
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	requests []*http.Request
	accepts  atomic.Int64
	closed   atomic.Bool
}

// New starts a proxy on 127.0.0.1 and stops it when the test ends, waiting
// for every goroutine it started.
func New(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Start starts a proxy on 127.0.0.1 outside a test (the wsdial demo uses
// it). The caller must call Close.
func Start(cfg Config) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
		scheme = "https"
	}
	if cfg.Realm == "" {
		cfg.Realm = "proxytest"
	}
	if cfg.WrongPasswordStatus == 0 {
		cfg.WrongPasswordStatus = http.StatusProxyAuthRequired
	}
	p := &Proxy{Addr: ln.Addr().String(), cfg: cfg, ln: ln, conns: make(map[net.Conn]struct{})}
	p.URL = &url.URL{Scheme: scheme, Host: p.Addr}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// URLWithUser returns the proxy URL carrying user and password.
func (p *Proxy) URLWithUser(user, pass string) *url.URL {
	u := *p.URL
	u.User = url.UserPassword(user, pass)
	return &u
}

// Accepts returns how many TCP connections the proxy accepted.
func (p *Proxy) Accepts() int { return int(p.accepts.Load()) }

// Requests returns the requests the proxy read, in order.
func (p *Proxy) Requests() []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*http.Request(nil), p.requests...)
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.handle(c)
		}()
	}
}

func (p *Proxy) proto() string {
	if p.cfg.HTTP10 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

func (p *Proxy) handle(c net.Conn) {
	if p.cfg.Stall {
		_, _ = io.Copy(io.Discard, c)
		return
	}
	br := bufio.NewReader(c)
	state := &ConnState{}
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.requests = append(p.requests, req)
		p.mu.Unlock()
		if p.cfg.Handle != nil {
			p.cfg.Handle(c, req)
			return
		}
		if req.Method != http.MethodConnect {
			fmt.Fprintf(c, "%s 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", p.proto())
			return
		}
		if ok, status, challenges := p.authorized(req, state); !ok {
			if !p.reject(c, status, challenges) {
				return
			}
			continue
		}
		p.tunnel(c, br, req.Host)
		return
	}
}

// authorized checks the credentials; status and challenges are the answer
// otherwise.
func (p *Proxy) authorized(req *http.Request, state *ConnState) (bool, int, []string) {
	if p.cfg.Auth != nil {
		return p.cfg.Auth.Authenticate(req, state)
	}
	if p.cfg.Username == "" {
		return true, 0, nil
	}
	challenges := p.cfg.Challenges
	if challenges == nil {
		challenges = []string{fmt.Sprintf("Basic realm=%q", p.cfg.Realm)}
	}
	h := req.Header.Get("Proxy-Authorization")
	if h == "" {
		return false, http.StatusProxyAuthRequired, challenges
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.cfg.Username+":"+p.cfg.Password))
	if h == want {
		return true, 0, nil
	}
	return false, p.cfg.WrongPasswordStatus, challenges
}

// reject answers 407 or 401 and reports whether the connection stays open.
func (p *Proxy) reject(c net.Conn, status int, challenges []string) bool {
	body := "authentication required\n"
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s\r\n", p.proto(), status, http.StatusText(status))
	hdr := "Proxy-Authenticate"
	if status == http.StatusUnauthorized {
		hdr = "WWW-Authenticate"
	}
	for _, ch := range challenges {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr, ch)
	}
	keep := !p.cfg.CloseAfter407 && status == http.StatusProxyAuthRequired
	if keep {
		b.WriteString("Connection: keep-alive\r\n")
	} else {
		b.WriteString("Connection: close\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_, err := io.WriteString(c, b.String())
	return keep && err == nil
}

func (p *Proxy) tunnel(c net.Conn, br *bufio.Reader, target string) {
	t, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		fmt.Fprintf(c, "%s 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", p.proto())
		return
	}
	if !p.track(t) {
		return
	}
	defer p.untrack(t)
	resp := []byte(p.proto() + " 200 Connection established\r\n\r\n")
	if d := p.cfg.CoalesceFirstBytes; d > 0 {
		buf := make([]byte, 4096)
		_ = t.SetReadDeadline(time.Now().Add(d))
		n, _ := t.Read(buf)
		_ = t.SetReadDeadline(time.Time{})
		resp = append(resp, buf[:n]...)
	}
	if _, err := c.Write(resp); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(t, br) // br holds anything the client sent early
		if tc, ok := t.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	if p.cfg.TargetReset {
		buf := make([]byte, 32<<10)
		if n, err := t.Read(buf); err == nil {
			_, _ = c.Write(buf[:n])
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // Close sends RST
		}
		c.Close()
		t.Close()
		<-done
		return
	}
	_, _ = io.Copy(c, t)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}
