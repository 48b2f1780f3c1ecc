package wsproxy_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/url"

	"github.com/wsproxy/wsproxy"
)

// ProxyForURL tells which proxies a dial would try, in order, and which
// settings chose them, without connecting. With a nil Dialer.Proxy the
// environment, then the operating system's settings (including PAC and
// WPAD) decide.
func ExampleProxyForURL() {
	u, _ := url.Parse("wss://sync.example.com:4984/db")
	dec, err := wsproxy.ProxyForURL(context.Background(), u)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range dec.Proxies {
		if p == nil {
			fmt.Println("DIRECT")
		} else {
			fmt.Println(p.Redacted())
		}
	}
	fmt.Println("from", dec.Source, "-", dec.Reason)
}

// A Dialer's own Proxy function decides alone.
func ExampleDialer_ProxyForURL() {
	d := &wsproxy.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.corp.example:3128", User: url.UserPassword("alice", "secret")})}
	u, _ := url.Parse("wss://sync.example.com:4984/db")
	dec, _ := d.ProxyForURL(context.Background(), u)
	fmt.Println(dec)
	// Output: http://alice:xxxxx@proxy.corp.example:3128 (from Dialer.Proxy: the Dialer's Proxy function chose it)
}
