package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy"
)

// newDialer builds the Dialer the flags describe.
func newDialer(o *options, stderr io.Writer) (_ *wsproxy.Dialer, err error) {
	d := &wsproxy.Dialer{}
	switch o.proxy {
	case "":
	case "direct":
		d.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	default:
		pu, _ := parseProxyFlag(o.proxy)
		if o.proxyUser != "" {
			pu.User = url.UserPassword(o.proxyUser, o.proxyPass)
		}
		d.Proxy = http.ProxyURL(pu)
	}
	if o.proxyUser != "" {
		// For a proxy found by discovery: answer its challenge.
		creds := &wsproxy.Credentials{Username: o.proxyUser, Password: o.proxyPass}
		d.Credentials = func(context.Context, *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
			return creds, nil
		}
	}
	d.ProxyConnectHeader = o.proxyHeaders
	d.ProxySPN = o.proxySPN
	if d.AuthSchemes, err = authSchemes(o.proxyAuth); err != nil {
		return nil, err
	}
	if o.verbose {
		d.Logf = func(format string, args ...any) {
			fmt.Fprintf(stderr, "wsdial: "+format+"\n", args...)
		}
	}
	if o.insecure || o.caFile != "" {
		cfg := &tls.Config{InsecureSkipVerify: o.insecure}
		if o.caFile != "" {
			pem, err := os.ReadFile(o.caFile)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificates in %s", o.caFile)
			}
		}
		d.TLSClientConfig = cfg
	}
	return d, nil
}

// authSchemes maps -proxy-auth to Dialer.AuthSchemes; nil means all the
// built-in schemes.
func authSchemes(name string) ([]wsproxy.AuthScheme, error) {
	switch strings.ToLower(name) {
	case "", "any":
		return nil, nil
	case "negotiate":
		return []wsproxy.AuthScheme{wsproxy.NegotiateAuth{}}, nil
	case "basic":
		return []wsproxy.AuthScheme{wsproxy.BasicAuth{}}, nil
	case "digest":
		return []wsproxy.AuthScheme{wsproxy.DigestAuth{}}, nil
	case "ntlm":
		return []wsproxy.AuthScheme{wsproxy.NTLMAuth{}}, nil
	}
	return nil, fmt.Errorf("-proxy-auth %q: want negotiate, basic, digest, ntlm or any", name)
}

// dialAndCopy opens the WebSocket and copies until either side ends.
func dialAndCopy(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	d, err := newDialer(o, stderr)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	c, _, err := d.Dial(dctx, o.url, &websocket.DialOptions{HTTPHeader: o.headers, Subprotocols: o.subprotocols})
	cancel()
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(o.maxMessage)
	if o.verbose && c.Subprotocol() != "" {
		fmt.Fprintf(stderr, "wsdial: subprotocol %s\n", c.Subprotocol())
	}
	return pump(ctx, c, o, stdin, stdout)
}

// pump copies stdin to c and c to stdout. At the end of input it lingers
// until the peer has been quiet for o.linger, then closes normally.
func pump(ctx context.Context, c *websocket.Conn, o *options, stdin io.Reader, stdout io.Writer) error {
	var lastRead atomic.Int64
	lastRead.Store(time.Now().UnixNano())
	readErr := make(chan error, 1)
	go func() {
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			lastRead.Store(time.Now().UnixNano())
			if !o.binary {
				msg = append(msg, '\n')
			}
			if _, err := stdout.Write(msg); err != nil {
				readErr <- fmt.Errorf("write output: %w", err)
				return
			}
		}
	}()
	inputDone := make(chan error, 1)
	go func() { inputDone <- sendInput(ctx, c, o, stdin) }()

	select {
	case err := <-readErr:
		// The peer ended first. Its normal close is a success.
		return peerEnded(err)
	case err := <-inputDone:
		if err != nil {
			c.Close(websocket.StatusInternalError, "input error")
			<-readErr
			return err
		}
	}
	// End of input: let the peer's answers arrive, then close.
	for {
		quiet := time.Since(time.Unix(0, lastRead.Load()))
		if quiet >= o.linger {
			break
		}
		select {
		case err := <-readErr:
			return peerEnded(err)
		case <-time.After(o.linger - quiet):
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	<-readErr
	return nil
}

// sendInput sends stdin as messages until EOF (nil) or an error.
func sendInput(ctx context.Context, c *websocket.Conn, o *options, stdin io.Reader) error {
	if o.binary {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				if werr := c.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read input: %w", err)
			}
		}
	}
	lines := lineReader(stdin, o.maxMessage)
	for lines.Scan() {
		if err := c.Write(ctx, websocket.MessageText, lines.Bytes()); err != nil {
			return err
		}
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	return nil
}

// peerEnded maps the reader's final error: a normal close by the peer is
// success.
func peerEnded(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return nil
	case -1:
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted")
		}
		return fmt.Errorf("connection lost: %w", err)
	}
	return fmt.Errorf("peer closed the connection: %w", err)
}
