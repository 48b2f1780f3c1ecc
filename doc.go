// Package wsproxy makes WebSocket connections work behind the HTTP proxies
// that corporate and hotel networks force on their users.
//
// A program whose only way out is a proxy writes
//
//	conn, resp, err := wsproxy.Dial(ctx, "wss://sync.example.com:4984/db/_blipsync", nil)
//
// and gets a *websocket.Conn from github.com/coder/websocket, as if it had a
// direct route. The Dialer chooses the proxy (in the order documented once,
// on ProxyForURL: Dialer.Proxy, the environment, the operating system's
// settings with PAC and WPAD, direct), opens an HTTP CONNECT
// tunnel for ws:// and wss:// alike, answers 407 challenges, runs TLS inside
// the tunnel for wss://, and then the WebSocket handshake.
//
// # Why CONNECT for ws:// too
//
// net/http sends plain-http requests to a proxy as an absolute-form
// "GET http://host/path". Proxies such as squid and tinyproxy forward that
// as an ordinary request and drop the Upgrade, so the handshake fails
// (often with 405). wsproxy always opens a CONNECT tunnel instead.
//
// # Errors
//
// A proxy that refuses the tunnel yields a *ProxyError carrying the status,
// headers and the first KiB of the body. errors.Is tells authentication
// failures apart: ErrProxyAuthRequired (no usable credentials) and
// ErrProxyCredentialsRejected (credentials sent and refused). Errors and
// traces never contain passwords; proxy URLs in them are redacted.
//
// # Raw tunnels
//
// (*Dialer).DialContext returns a plain net.Conn through the proxy for any
// TCP protocol; it plugs into http.Transport.DialContext.
package wsproxy
