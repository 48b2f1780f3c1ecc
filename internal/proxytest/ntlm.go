package proxytest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"unicode/utf16"
)

// NTLM is an Authenticator running the NTLM message flow like squid's
// ntlm_fake_auth: it answers a negotiate message with a challenge message
// on the same connection and accepts an authenticate message for Username
// that arrives on the connection that got the challenge. It does not check
// the password (NTLMv2 verification needs the MD4 hash); a wrong Username
// is refused. Set it as Config.Auth.
type NTLM struct {
	Username string
	// Extra challenges are offered after "NTLM" (e.g. a Basic one, which
	// this Authenticator never accepts).
	Extra []string

	mu        sync.Mutex
	accepted  int
	crossConn int
}

type ntlmConnState struct{ challenged bool }

// Accepted returns how many authenticate messages were accepted.
func (n *NTLM) Accepted() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accepted
}

// CrossConnection returns how many authenticate messages arrived on a
// connection that had not received the challenge.
func (n *NTLM) CrossConnection() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.crossConn
}

// Authenticate implements Authenticator.
func (n *NTLM) Authenticate(req *http.Request, conn *ConnState) (bool, int, []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	bare := append([]string{"NTLM"}, n.Extra...)
	st, _ := conn.Value.(*ntlmConnState)
	if st == nil {
		st = &ntlmConnState{}
		conn.Value = st
	}
	token, ok := strings.CutPrefix(req.Header.Get("Proxy-Authorization"), "NTLM ")
	if !ok {
		return false, http.StatusProxyAuthRequired, bare
	}
	msg, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(msg) < 12 || !bytes.Equal(msg[:8], []byte("NTLMSSP\x00")) {
		return false, http.StatusProxyAuthRequired, bare
	}
	switch binary.LittleEndian.Uint32(msg[8:12]) {
	case 1:
		st.challenged = true
		return false, http.StatusProxyAuthRequired, []string{"NTLM " + base64.StdEncoding.EncodeToString(ntlmChallenge())}
	case 3:
		if !st.challenged {
			n.crossConn++
			return false, http.StatusProxyAuthRequired, bare
		}
		st.challenged = false
		user, _, _ := strings.Cut(ntlmUser(msg), "@") // a UPN keeps its domain in the name
		if !strings.EqualFold(user, n.Username) {
			return false, http.StatusProxyAuthRequired, bare
		}
		n.accepted++
		return true, 0, nil
	}
	return false, http.StatusProxyAuthRequired, bare
}

// ntlmChallenge builds a minimal CHALLENGE message: Unicode, NTLM and
// extended session security, a random server challenge, no target info.
func ntlmChallenge() []byte {
	b := make([]byte, 48)
	copy(b, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(b[8:], 2)
	binary.LittleEndian.PutUint32(b[16:], 48) // empty TargetName at the end
	binary.LittleEndian.PutUint32(b[20:], 0x00000001|0x00000200|0x00080000)
	_, _ = rand.Read(b[24:32])
	binary.LittleEndian.PutUint32(b[44:], 48) // empty TargetInfo
	return b
}

// ntlmUser returns the user name of an AUTHENTICATE message (UTF-16LE).
func ntlmUser(msg []byte) string {
	if len(msg) < 44 {
		return ""
	}
	l := int(binary.LittleEndian.Uint16(msg[36:]))
	off := int(binary.LittleEndian.Uint32(msg[40:]))
	if l%2 != 0 || off+l > len(msg) {
		return ""
	}
	u := make([]uint16, l/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(msg[off+2*i:])
	}
	return string(utf16.Decode(u))
}
