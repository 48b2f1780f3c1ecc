package wsproxy_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// recordingNTLM is NTLMAuth that records the CHALLENGE messages it answers.
// With negotiate set it sends that NEGOTIATE message instead of its own,
// to make the server choose other flags.
type recordingNTLM struct {
	wsproxy.NTLMAuth
	mu        *sync.Mutex
	type2s    *[]string
	negotiate []byte
}

// oemNegotiate is a NEGOTIATE message offering OEM strings only, and
// LM_KEY, as curl sends (flags 0x00088286: OEM, REQUEST_TARGET, LM_KEY,
// NTLM, ALWAYS_SIGN, EXTENDED_SESSION).
var oemNegotiate = []byte("NTLMSSP\x00\x01\x00\x00\x00\x86\x82\x08\x00" + strings.Repeat("\x00", 16))

func (r recordingNTLM) Start(ctx context.Context, proxy *url.URL, target string, creds *wsproxy.Credentials) (wsproxy.AuthSession, error) {
	s, err := r.NTLMAuth.Start(ctx, proxy, target, creds)
	if err != nil {
		return nil, err
	}
	return recordingSession{AuthSession: s, r: r}, nil
}

type recordingSession struct {
	wsproxy.AuthSession
	r recordingNTLM
}

func (s recordingSession) Answer(ctx context.Context, ch wsproxy.Challenge) (string, error) {
	if ch.Token68 != "" {
		s.r.mu.Lock()
		*s.r.type2s = append(*s.r.type2s, ch.Token68)
		s.r.mu.Unlock()
	}
	v, err := s.AuthSession.Answer(ctx, ch)
	if err == nil && ch.Token68 == "" && s.r.negotiate != nil {
		v = "NTLM " + base64.StdEncoding.EncodeToString(s.r.negotiate)
	}
	return v, err
}

// NTLM against a verifier that refuses wrong passwords: squid with Samba's
// ntlm_auth, winbindd as a standalone server with a local user, through to
// a real WebSocket echo (websockify). The right password opens the tunnel
// whether the user is given as DOMAIN\user or as user; a wrong one ends in
// ErrProxyCredentialsRejected after its one authenticate message, all on
// one connection.
func TestPeersSquidSambaNTLM(t *testing.T) {
	t.Parallel()
	const user, pass = "alice", "s3cret-NTLM-pw"
	samba := peertest.StartSamba(t, user, pass)
	squid := peertest.StartSquidSambaNTLM(t, samba)
	ws := peertest.Websockify(t, peertest.EchoServer(t), "")
	proxy := &url.URL{Scheme: "http", Host: squid.Addr}

	var mu sync.Mutex
	var type2s []string
	dial := func(t *testing.T, d *wsproxy.Dialer, negotiate []byte) (connects int, dials int64, err error) {
		t.Helper()
		var n atomic.Int64
		logs := &logSink{}
		d.NetDial, d.Logf = countingDial(&n), logs.Logf
		d.AuthSchemes = []wsproxy.AuthScheme{recordingNTLM{mu: &mu, type2s: &type2s, negotiate: negotiate}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, _, err := d.Dial(ctx, "ws://"+ws+"/", &websocket.DialOptions{Subprotocols: []string{"binary"}})
		if err == nil {
			streamEcho(t, ctx, c, 16<<10)
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		}
		assertNoSecrets(t, logs.String(), pass, "wrong-"+pass)
		return strings.Count(logs.String(), "-> CONNECT "), n.Load(), err
	}
	for _, tc := range []struct {
		name, user, pass string
		inURL            bool
		oem              bool // the server is made to answer with OEM strings and LM_KEY
		wantErr          error
	}{
		{name: `OEM challenge, DOMAIN\user`, user: peertest.SambaDomain + `\` + user, pass: pass, oem: true},
		{name: "OEM challenge, wrong password", user: user, pass: "wrong-" + pass, oem: true, wantErr: wsproxy.ErrProxyCredentialsRejected},
		{name: `DOMAIN\user`, user: peertest.SambaDomain + `\` + user, pass: pass},
		{name: "user", user: user, pass: pass},
		{name: `DOMAIN\user in the proxy URL`, user: peertest.SambaDomain + `\` + user, pass: pass, inURL: true},
		{name: "wrong password", user: user, pass: "wrong-" + pass, wantErr: wsproxy.ErrProxyCredentialsRejected},
		{name: `wrong password, DOMAIN\user`, user: peertest.SambaDomain + `\` + user, pass: "wrong-" + pass, wantErr: wsproxy.ErrProxyCredentialsRejected},
	} {
		// One after the other: ntlm_auth shares one winbindd.
		t.Run(tc.name, func(t *testing.T) {
			d := &wsproxy.Dialer{Proxy: http.ProxyURL(proxy)}
			if tc.inURL {
				u := *proxy
				u.User = url.UserPassword(tc.user, tc.pass)
				d.Proxy = http.ProxyURL(&u)
			} else {
				var calls atomic.Int64
				d.Credentials = fixedCreds(&calls, tc.user, tc.pass)
			}
			var negotiate []byte
			if tc.oem {
				negotiate = oemNegotiate
			}
			mu.Lock()
			seen := len(type2s)
			mu.Unlock()
			connects, dials, err := dial(t, d, negotiate)
			mu.Lock()
			require.Len(t, type2s, seen+1, "one CHALLENGE message per dial")
			type2, derr := base64.StdEncoding.DecodeString(type2s[seen])
			mu.Unlock()
			require.NoError(t, derr)
			require.GreaterOrEqual(t, len(type2), 32)
			if flags := binary.LittleEndian.Uint32(type2[20:]); tc.oem {
				require.Zero(t, flags&flagUnicode, "Samba answered an OEM-only negotiate with UNICODE: %#08x", flags)
				t.Logf("Samba's OEM CHALLENGE flags: %#08x", flags)
			}
			require.EqualValues(t, 1, dials, "one TCP connection: NTLM's legs share it")
			require.Equal(t, 3, connects, "no credentials, negotiate, authenticate; never a second authenticate")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				var pe *wsproxy.ProxyError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, http.StatusProxyAuthRequired, pe.StatusCode)
				assertNoSecrets(t, err.Error(), tc.pass)
				return
			}
			require.NoError(t, err)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, type2s)
	t.Logf("a CHALLENGE message from squid + Samba ntlm_auth: %s", type2s[0])
}
