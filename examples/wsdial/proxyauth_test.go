package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// -proxy-auth restricts the schemes; -v says which was chosen and why.
func TestProxyAuthFlag(t *testing.T) {
	t.Parallel()
	echo, err := startEcho()
	require.NoError(t, err)
	t.Cleanup(func() { echo.Close() })
	target := "ws://" + echo.Addr().String() + "/echo"
	for _, tc := range []struct {
		flag     string
		wantCode int
		wantErr  []string
	}{
		{"any", 0, []string{`auth: answering Digest realm="corp" with credentials from the proxy URL (the strongest usable; offered: Digest realm="corp", Basic realm="corp"; allowed: Negotiate, Digest, NTLM, Basic)`}},
		{"digest", 0, []string{"allowed: Digest)"}},
		{"basic", 1, []string{"proxy rejected the credentials (Basic"}},
		{"ntlm", 1, []string{`no allowed scheme (allowed: NTLM; offered: Digest realm="corp", Basic realm="corp")`}},
		{"kerberos", 2, []string{`-proxy-auth "kerberos": want negotiate, basic, digest, ntlm or any`}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			t.Parallel()
			auth := &proxytest.Digest{Username: "alice", Password: "pw", Realm: "corp", Extra: []string{`Basic realm="corp"`}}
			p := proxytest.New(t, proxytest.Config{Auth: auth})
			code, _, errOut := runWsdial(t, strings.NewReader("hi\n"), "-proxy", p.URL.String(), "-proxy-user", "alice:pw",
				"-proxy-auth", tc.flag, "-linger", "2s", "-v", target)
			require.Equal(t, tc.wantCode, code, errOut)
			for _, w := range tc.wantErr {
				require.Contains(t, errOut, w)
			}
			require.NotContains(t, errOut, ":pw")
			if tc.flag == "digest" {
				for _, h := range auth.Seen() {
					require.False(t, strings.HasPrefix(h, "Basic"), "no clear-text guess when restricted to Digest")
				}
			}
		})
	}
}
