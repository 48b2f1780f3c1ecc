package wsproxy_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/proxytest"
)

// Neither the trace nor any error holds the password, its base64 form or
// the Digest key derived from it; the WebSocket request to the target
// carries no Proxy-Authorization, even when the caller put one there.
func TestAuthSecretsStaySecret(t *testing.T) {
	t.Parallel()
	const pw = "pa55-Digest-s3cret"
	digestKeys := func(realm string) []string {
		m := md5.Sum([]byte("alice:" + realm + ":" + pw))
		s := sha256.Sum256([]byte("alice:" + realm + ":" + pw))
		return []string{hex.EncodeToString(m[:]), hex.EncodeToString(s[:])}
	}
	for _, tc := range []struct {
		name string
		auth proxytest.Authenticator
		pass string // the password the client sends
	}{
		{"Digest, right password", &proxytest.Digest{Username: "alice", Password: pw, Realm: "corp", Algorithms: []string{"SHA-256", "MD5"}}, pw},
		{"Digest, wrong password", &proxytest.Digest{Username: "alice", Password: "other", Realm: "corp"}, pw},
		{"NTLM", &proxytest.NTLM{Username: "alice"}, pw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := proxytest.New(t, proxytest.Config{Auth: tc.auth})
			target := newEchoServer(t, false)
			logs := &logSink{}
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(p.URL), Logf: logs.Logf, Credentials: fixedCreds(new(atomic.Int64), "alice", tc.pass)}
			var errs []string
			for i := 0; i < 2; i++ {
				hdr := http.Header{"Proxy-Authorization": {"Basic bm90LWZvci10aGUtdGFyZ2V0"}}
				c, _, err := d.Dial(context.Background(), target.wsURL("/"), &websocket.DialOptions{HTTPHeader: hdr})
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				c.CloseNow()
			}
			text := logs.String() + "\n" + strings.Join(errs, "\n")
			assertNoSecrets(t, text, pw)
			for _, k := range digestKeys("corp") {
				require.NotContains(t, text, k)
			}
			for _, r := range target.requests() {
				require.Empty(t, r.Header.Values("Proxy-Authorization"), "proxy credentials reached the target")
			}
		})
	}
}
