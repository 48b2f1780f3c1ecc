// Package bridge relays WebSocket connections to TCP services, as
// websockify does: a browser opens a WebSocket to the bridge, the bridge
// opens a TCP connection (or a Unix socket, or TLS) to the target and
// copies bytes both ways until one side closes.
//
// Handler is an http.Handler to mount on an existing server:
//
//	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: "127.0.0.1:5900"}}
//	http.Handle("/websockify", h)
//	log.Fatal(http.ListenAndServe("127.0.0.1:6080", nil))
//
// # Protocols
//
// RFC 6455 clients choose a subprotocol: "binary" (binary messages carry
// raw bytes; also the mode when no subprotocol is offered) or "base64"
// (text messages carry base64). When both are offered "binary" wins. A
// client offering subprotocols but neither of these gets 400. The legacy
// Hixie-75/76 protocol (0x00 base64 0xFF frames) is served on the same
// Handler, detected from the request headers; it needs an
// http.ResponseWriter that can be hijacked (HTTP/1.1). With "seq_num" in
// the query (bare or =1), every frame or base64 message sent to the client
// starts with a counter and a colon: "0:", "1:", ...
//
// # One port for everything
//
// Listen (or NewListener) wraps a net.Listener so one port serves TLS,
// plain HTTP and Flash cross-domain policy requests, telling them apart by
// their first bytes; SSLOnly refuses plain connections. Recorder writes
// noVNC-format recordings and TrafficLegend websockify's --traffic
// display, both through Handler.OpenTap.
//
// # Security
//
// The bridge is not an open relay: each request's target comes from a
// TargetResolver, either fixed by the operator or looked up by token
// (TokenFile, RedisTokens, or JWTTokens whose signed tokens name their
// target) and checked against an AllowList. By default only same-origin browser pages
// may connect (Origin's host equal to the request's Host, or no Origin
// header at all, as from non-browser clients); see Handler.AllowedOrigins.
// BasicAuth and ClientCertCNs restrict who connects.
//
// # Lifecycle
//
// Each connection logs one line when it ends (see Handler.Logger) and is
// counted in Stats and in the Prometheus metrics of Handler.Collector.
// Handler.HealthHandler answers /healthz and /readyz for load balancers.
// Drain turns /readyz to 503 while connections are still served, so a
// load balancer stops sending new ones; Shutdown refuses new connections
// and waits for open ones, then closes the rest with 1001.
package bridge
