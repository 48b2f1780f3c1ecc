package wsproxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy"
)

// The package-level Dial finds the proxy in the environment
// (wss_proxy, https_proxy, all_proxy, NO_PROXY...).
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := wsproxy.Dial(ctx, "wss://sync.example.com:4984/db/_blipsync", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.CloseNow()
	_ = conn.Write(ctx, websocket.MessageText, []byte("hello"))
}

// A Dialer with an explicit proxy, credentials asked for only when the
// proxy challenges, and a trace of the exchange.
func ExampleDialer_Dial() {
	d := &wsproxy.Dialer{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.corp.example:3128"}),
		Credentials: func(ctx context.Context, r *wsproxy.CredentialsRequest) (*wsproxy.Credentials, error) {
			// r.Scheme and r.Realm say what the proxy asked for.
			return &wsproxy.Credentials{Username: "alice", Password: os.Getenv("PROXY_PASSWORD")}, nil
		},
		Logf: log.Printf, // credentials are redacted
	}
	conn, _, err := d.Dial(context.Background(), "ws://chat.example.com/socket", &websocket.DialOptions{
		Subprotocols: []string{"chat.v1"},
	})
	var pe *wsproxy.ProxyError
	switch {
	case errors.Is(err, wsproxy.ErrProxyCredentialsRejected):
		log.Fatal("wrong proxy password")
	case errors.As(err, &pe):
		log.Fatalf("proxy said %d %s", pe.StatusCode, pe.Status)
	case err != nil:
		log.Fatal(err)
	}
	defer conn.CloseNow()
}

// DialContext gives raw TCP tunnels through the proxy, for any protocol.
func ExampleDialer_DialContext() {
	d := &wsproxy.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := client.Get("https://example.com/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}

// ProxyFromEnvironment is the Dialer's default choice, usable anywhere a
// net/http proxy function is.
func ExampleProxyFromEnvironment() {
	req, _ := http.NewRequest("GET", "https://example.com/", nil)
	proxy, err := wsproxy.ProxyFromEnvironment(req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(proxy != nil)
}

func ExampleParseChallenges() {
	chs, _ := wsproxy.ParseChallenges([]string{`Digest realm="corp", nonce="abc", qop="auth", NTLM`, `Basic realm="corp"`})
	for _, ch := range chs {
		fmt.Println(ch)
	}
	// Output:
	// Digest realm="corp"
	// NTLM
	// Basic realm="corp"
}
