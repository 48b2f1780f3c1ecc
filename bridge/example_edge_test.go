package bridge_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net/http"
	"net/netip"

	"github.com/wsproxy/wsproxy/bridge"
)

// Behind HAProxy (send-proxy-v2) on 10.0.0.0/8: the PROXY header gives
// each connection the client's address, the certificate is read again
// when its files change, and the target gets a PROXY header of its own.
func ExampleListenerOptions_proxyProtocol() {
	trusted, err := bridge.ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		log.Fatal(err)
	}
	certs, err := bridge.NewCertReloader("/etc/wsbridge/tls.crt", "/etc/wsbridge/tls.key", nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go func() { _ = certs.Watch(ctx) }()
	l, err := bridge.Listen("tcp", ":6080", &bridge.ListenerOptions{
		ProxyProtocol: &bridge.ProxyProtocolPolicy{TrustedProxies: trusted},
		TLSConfig:     &tls.Config{GetCertificate: certs.GetCertificate},
	})
	if err != nil {
		log.Fatal(err)
	}
	h := &bridge.Handler{
		Resolver:            bridge.FixedTarget{Address: "10.1.2.3:5900"},
		TargetProxyProtocol: bridge.ProxyProtocolV2,
	}
	log.Fatal(http.Serve(l, h))
}

// A resolver that picks the target by the client's real address.
type byClientNetwork struct{ office netip.Prefix }

func (b byClientNetwork) Resolve(ctx context.Context, _ *http.Request) (bridge.Target, error) {
	if ip, ok := bridge.ClientAddrPort(ctx); ok && b.office.Contains(ip.Addr()) {
		return bridge.Target{Address: "10.1.2.3:5900"}, nil
	}
	return bridge.Target{}, fmt.Errorf("client %s: %w", bridge.ClientAddr(ctx), bridge.ErrTargetNotAllowed)
}

// Behind nginx on the same machine, through a socket file only nginx's
// group may open, believing nginx's X-Forwarded-For.
func ExampleListenUnix() {
	inner, err := bridge.ListenUnix("/run/wsbridge/bridge.sock", 0o660)
	if err != nil {
		log.Fatal(err)
	}
	h := &bridge.Handler{
		Resolver:       byClientNetwork{office: netip.MustParsePrefix("192.0.2.0/24")},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	log.Fatal(http.Serve(inner, h))
}
