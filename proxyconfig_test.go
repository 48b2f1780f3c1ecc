package wsproxy_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
)

type envCase struct {
	env     map[string]string
	url     string
	want    string // proxy URL, "" for direct
	wantErr string
	unset   bool // no variable applies: the OS settings get a say
}

func (c envCase) String() string { return fmt.Sprintf("%s with %v", c.url, c.env) }

func TestProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	cases := []envCase{
		{env: map[string]string{}, url: "ws://example.com/", unset: true},
		{env: map[string]string{"http_proxy": "proxy:3128"}, url: "ws://example.com/", want: "http://proxy:3128"},
		{env: map[string]string{"HTTP_PROXY": "http://proxy:3128"}, url: "ws://example.com/", want: "http://proxy:3128"},
		{env: map[string]string{"http_proxy": "http://proxy:3128"}, url: "wss://example.com/", unset: true},
		{env: map[string]string{"https_proxy": "http://sproxy:3128"}, url: "wss://example.com/", want: "http://sproxy:3128"},
		{env: map[string]string{"HTTPS_PROXY": "https://sproxy:443"}, url: "wss://example.com/", want: "https://sproxy:443"},
		// curl's names come first.
		{env: map[string]string{"ws_proxy": "http://wsp:1", "http_proxy": "http://hp:2"}, url: "ws://example.com/", want: "http://wsp:1"},
		{env: map[string]string{"WSS_PROXY": "http://wssp:1", "https_proxy": "http://hp:2"}, url: "wss://example.com/", want: "http://wssp:1"},
		{env: map[string]string{"ws_proxy": "http://wsp:1"}, url: "wss://example.com/", unset: true},
		// lower case before upper case, as curl does.
		{env: map[string]string{"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"}, url: "ws://example.com/", want: "http://lower:1"},
		// ALL_PROXY is the fallback, for both schemes, and may be SOCKS.
		{env: map[string]string{"ALL_PROXY": "socks5h://sock:1080"}, url: "ws://example.com/", want: "socks5h://sock:1080"},
		{env: map[string]string{"all_proxy": "http://all:1", "https_proxy": "http://s:2"}, url: "wss://example.com/", want: "http://s:2"},
		{env: map[string]string{"all_proxy": "http://all:1"}, url: "wss://example.com/", want: "http://all:1"},
		// NO_PROXY: domains, subdomains, host:port, CIDR, *.
		{env: map[string]string{"http_proxy": "p:1", "NO_PROXY": "example.com"}, url: "ws://example.com/"},
		{env: map[string]string{"http_proxy": "p:1", "no_proxy": ".example.com"}, url: "ws://a.example.com/"},
		{env: map[string]string{"http_proxy": "p:1", "NO_PROXY": "example.com"}, url: "ws://sub.example.com/"},
		{env: map[string]string{"http_proxy": "p:1", "NO_PROXY": "example.com"}, url: "ws://notexample.com/", want: "http://p:1"},
		{env: map[string]string{"http_proxy": "p:1", "NO_PROXY": "example.com:8080"}, url: "ws://example.com:8080/"},
		{env: map[string]string{"http_proxy": "p:1", "NO_PROXY": "example.com:8080"}, url: "ws://example.com/", want: "http://p:1"},
		{env: map[string]string{"http_proxy": "p:1", "NO_PROXY": "10.0.0.0/8"}, url: "ws://10.1.2.3/"},
		{env: map[string]string{"https_proxy": "p:1", "NO_PROXY": "*"}, url: "wss://anything/"},
		// Loopback always goes direct.
		{env: map[string]string{"http_proxy": "p:1"}, url: "ws://localhost:8080/"},
		{env: map[string]string{"http_proxy": "p:1"}, url: "ws://127.0.0.1:8080/"},
		// CGI: HTTP_PROXY may come from a client's Proxy: header.
		{env: map[string]string{"HTTP_PROXY": "p:1", "REQUEST_METHOD": "GET"}, url: "ws://example.com/", wantErr: "CGI"},
		{env: map[string]string{"ws_proxy": "p:1", "REQUEST_METHOD": "GET"}, url: "ws://example.com/", want: "http://p:1"},
		{env: map[string]string{"http_proxy": "http://[bad"}, url: "ws://example.com/", wantErr: "invalid proxy URL in http_proxy"},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		require.NoError(t, err)
		got, configured, err := wsproxy.ProxyFromEnv(func(k string) string { return tc.env[k] }, u)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, tc.String())
			continue
		}
		require.NoError(t, err, tc.String())
		require.Equal(t, !tc.unset, configured, tc.String())
		if tc.want == "" {
			require.Nil(t, got, tc.String())
		} else {
			require.NotNil(t, got, tc.String())
			require.Equal(t, tc.want, got.String(), tc.String())
		}
	}
}
