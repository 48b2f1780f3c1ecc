package bridge_test

import (
	"fmt"
	"log"

	"github.com/wsproxy/wsproxy/bridge"
)

// Tokens that carry their own target: ?token= is a JWT signed by the
// holder of the private key whose public half is in the PEM file, with
// "host" and "port" claims; the allow-list still applies.
func ExampleJWTTokens() {
	allow, err := bridge.ParseAllowList("10.0.0.0/8:5900-5999")
	if err != nil {
		log.Fatal(err)
	}
	h := &bridge.Handler{Resolver: &bridge.TokenResolver{
		Store: &bridge.JWTTokens{KeyFile: "/etc/wsbridge/jwt-public.pem"},
		Allow: allow,
	}}
	_ = h
}

// One string names the Redis deployment: websockify's form, or a URL for
// TLS, Sentinel and Cluster. String describes it without the password.
func ExampleParseRedisSource() {
	for _, src := range []string{
		"redis.internal:6379:2:s3cret",
		"rediss://:s3cret@redis.internal/0?namespace=vnc",
		"redis+sentinel://:s3cret@s1,s2,s3/tokens/1",
		"redis+cluster://n1:7000,n2:7000",
	} {
		store, err := bridge.ParseRedisSource(src)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(store)
		_ = store.Close()
	}
	// Output:
	// redis://redis.internal:6379/2
	// rediss://redis.internal:6379/0?namespace=vnc
	// redis+sentinel://s1:26379,s2:26379,s3:26379/tokens/1
	// redis+cluster://n1:7000,n2:7000
}
