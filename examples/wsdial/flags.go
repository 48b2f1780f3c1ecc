package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/wsproxy/wsproxy"
)

var errHelp = errors.New("help requested")

type options struct {
	url          string
	proxy        string // "" = discovery, "direct" = none
	proxyUser    string
	proxyPass    string
	proxyAuth    string // "any", "negotiate", "basic", "digest" or "ntlm"
	proxySPN     string // Dialer.ProxySPN
	headers      http.Header
	proxyHeaders http.Header // added to every CONNECT (Dialer.ProxyConnectHeader)
	subprotocols []string
	binary       bool
	verbose      bool
	demo         bool
	showProxy    bool
	insecure     bool
	caFile       string
	linger       time.Duration
	timeout      time.Duration
	maxMessage   int64
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{headers: http.Header{}}
	fs := flag.NewFlagSet("wsdial", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var headers, proxyHeaders, protos listFlag
	fs.StringVar(&o.proxy, "proxy", "", "proxy URL (http://, https://, socks5://, socks5h://); \"direct\" for none; default: the environment, then the system settings")
	fs.StringVar(&o.proxyUser, "proxy-user", "", "proxy credentials `user[:password]`; the password is asked for on a terminal when omitted")
	fs.StringVar(&o.proxyAuth, "proxy-auth", "any", "proxy authentication scheme: negotiate (Kerberos), basic, digest, ntlm, or any (the strongest the proxy offers, Negotiate first, falling back when no Kerberos ticket can be had; never falls back when one is named)")
	fs.StringVar(&o.proxySPN, "proxy-spn", "", "the proxy's Kerberos service principal for Negotiate, e.g. `HTTP/proxy.corp.example`; default HTTP/ and the proxy's host as written")
	fs.Var(&headers, "H", "extra handshake header `Name: value` (repeatable)")
	fs.Var(&proxyHeaders, "proxy-header", "extra CONNECT request header `Name: value` for the proxy (repeatable; Host, Content-Length, Transfer-Encoding and Connection other than keep-alive are refused)")
	fs.Var(&protos, "subprotocol", "WebSocket subprotocol to offer (repeatable)")
	fs.BoolVar(&o.binary, "binary", false, "send input bytes as binary messages and write payloads unframed (a byte pipe)")
	fs.BoolVar(&o.verbose, "v", false, "trace the proxy exchange on standard error (credentials redacted)")
	fs.BoolVar(&o.demo, "demo", false, "run a self-contained demonstration on loopback and exit")
	fs.BoolVar(&o.showProxy, "show-proxy", false, "print which proxies the URL would go through, in order, and which settings chose them, then exit without connecting")
	fs.BoolVar(&o.insecure, "k", false, "do not verify the wss:// server's certificate")
	fs.StringVar(&o.caFile, "cacert", "", "PEM `file` of CA certificates to trust for wss://")
	fs.DurationVar(&o.linger, "linger", time.Second, "after the end of input, wait until the peer has been quiet this long before closing")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "limit on opening the connection (proxy and handshake)")
	fs.Int64Var(&o.maxMessage, "max-message", 16<<20, "largest message accepted, in bytes")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: wsdial [flags] ws[s]://host[:port]/path\n       wsdial -demo\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, errHelp
		}
		return nil, err
	}
	// Flags may also follow the URL.
	if rest := fs.Args(); len(rest) > 0 {
		o.url = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return nil, err
		}
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
	}
	if o.demo {
		return o, nil
	}
	if o.url == "" {
		fs.Usage()
		return nil, errors.New("missing URL")
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("invalid header %q (want \"Name: value\")", h)
		}
		o.headers.Add(textproto.TrimString(name), textproto.TrimString(value))
	}
	for _, h := range proxyHeaders {
		name, value, err := parseProxyHeader(h)
		if err != nil {
			return nil, err
		}
		if o.proxyHeaders == nil {
			o.proxyHeaders = http.Header{}
		}
		o.proxyHeaders.Add(name, value)
	}
	o.subprotocols = protos
	if _, err := authSchemes(o.proxyAuth); err != nil {
		return nil, err
	}
	if o.proxyUser != "" {
		user, pass, ok := strings.Cut(o.proxyUser, ":")
		o.proxyUser, o.proxyPass = user, pass
		if !ok {
			p, err := askPassword(user)
			if err != nil {
				return nil, err
			}
			o.proxyPass = p
		}
	}
	if o.proxy != "" && o.proxy != "direct" {
		if _, err := parseProxyFlag(o.proxy); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// parseProxyHeader parses a -proxy-header value, "Name: value", for the
// CONNECT request, refusing what wsproxy.CheckProxyConnectHeader refuses
// before anything is sent. Errors quote only the header name, never a
// value, which may be a credential.
func parseProxyHeader(h string) (name, value string, err error) {
	name, value, ok := strings.Cut(h, ":")
	name, value = textproto.TrimString(name), textproto.TrimString(value)
	if !ok || name == "" {
		return "", "", errors.New("invalid -proxy-header (want \"Name: value\")")
	}
	var he *wsproxy.ConnectHeaderError
	if errors.As(wsproxy.CheckProxyConnectHeader(name, value), &he) {
		switch he.Problem {
		case "invalid name":
			return "", "", fmt.Errorf("invalid -proxy-header name %q", name)
		case "invalid value":
			return "", "", fmt.Errorf("invalid -proxy-header value for %s (control characters such as CR or LF are not allowed)", name)
		case "keep-alive only":
			return "", "", errors.New("-proxy-header Connection is refused unless its value is keep-alive: other tokens would end or alter the connection the proxy authentication runs on")
		}
		return "", "", fmt.Errorf("-proxy-header %s is refused: it would break the CONNECT exchange with the proxy", he.Name)
	}
	return textproto.CanonicalMIMEHeaderKey(name), value, nil
}

// parseProxyFlag accepts a proxy URL, with http:// assumed when the scheme
// is missing.
func parseProxyFlag(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, errors.New("invalid -proxy value (want a URL like http://proxy:3128)")
	}
	return u, nil
}

// askPassword reads the proxy password from the terminal without echo. It
// refuses when there is no terminal, rather than read it from the data on
// standard input.
func askPassword(user string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return "", errors.New("-proxy-user has no password and there is no terminal to ask for one (use user:password)")
	}
	defer tty.Close()
	fmt.Fprintf(tty, "proxy password for %s: ", user)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// lineReader returns a reader of input lines of at most max bytes.
func lineReader(r io.Reader, max int64) *bufio.Scanner {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), int(max))
	return s
}
