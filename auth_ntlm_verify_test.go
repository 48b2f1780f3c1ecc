package wsproxy_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy"
)

// The password of the MS-NLMP section 4.2 examples and its NT hash
// (NTOWFv1 = MD4(UNICODE("Password")), section 4.2.2.1.2). The verifier
// below starts from this published hash, so it shares no code with the
// client's encoder.
const (
	specPassword = "Password"
	specNTHash   = "a4f49c406510bdcab6824ee7c30fd852"
)

// NTLM flags the verifier looks at (MS-NLMP 2.2.2.5).
const (
	flagUnicode = 0x00000001
	flagOEM     = 0x00000002
	flagLMKey   = 0x00000080
	flagKeyExch = 0x40000000
)

// ntlmType2 are CHALLENGE messages as real servers send them.
var ntlmType2 = []struct {
	name string
	msg  string // hex
}{
	// An appliance answering with OEM strings and offering LM_KEY, the
	// flag set of the issue: 0x00018286 (OEM, REQUEST_TARGET, LM_KEY,
	// NTLM, ALWAYS_SIGN, TARGET_TYPE_DOMAIN), the 40-byte layout without
	// TargetInfo, target name "WSPROXY" in OEM.
	{"OEM only with LM_KEY", "4e544c4d53535000020000000700070028000000868201000123456789abcdef0000000000000000" +
		"57535052 4f5859"},
	// The same appliance when it understands Unicode: 0x00088287 (UNICODE,
	// OEM, REQUEST_TARGET, LM_KEY, NTLM, ALWAYS_SIGN, EXTENDED_SESSION).
	{"Unicode with LM_KEY", "4e544c4d53535000020000000800080030000000878208001122334455667788" +
		"00000000000000000000000038000000" + "5700530050005800"},
	// MS-NLMP 4.2.4.3: Unicode, target info, KEY_EXCH, SIGN and SEAL
	// (0xe28a8233), as Windows servers send.
	{"MS-NLMP example with KEY_EXCH", "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef" +
		"00000000000000002400240044000000060070170000000f530065007200760065007200" +
		"02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000"},
	// squid 5.7 with Samba 4.17's ntlm_auth (winbindd, standalone server
	// WSPROXY) answering this client's negotiate message, as logged by
	// TestPeersSquidSambaNTLM: 0xa2088201 (UNICODE, NTLM, ALWAYS_SIGN,
	// EXTENDED_SESSION, VERSION, 128, 56), empty TargetName and TargetInfo.
	{"squid with Samba ntlm_auth", "4e544c4d53535000020000000000000038000000018208a25f8f837815ed1794" +
		"00000000000000000000000038000000060100000000000f"},
	// The same answering a NEGOTIATE that offers OEM only, as curl sends:
	// 0x028a8206 (OEM, REQUEST_TARGET, NTLM, ALWAYS_SIGN, TARGET_TYPE_SERVER,
	// EXTENDED_SESSION, TARGET_INFO, VERSION), OEM target name, target
	// info with a timestamp.
	{"squid with Samba ntlm_auth, OEM", "4e544c4d5353500002000000070007003800000006828a02b8cdc0054ed70456" +
		"0000000000000000400040003f000000060100000000000f575350524f585902000e0057005300500052004f005800590001000e0057005300500052004f0058005900040000000300040076006d00070008001404a8d04982dd0100000000"},
}

// ntlmV2Verifier checks an AUTHENTICATE message the way a server does
// (MS-NLMP 3.3.2): it recomputes NTProofStr from the NT hash of the
// password and the names in the message.
type ntlmV2Verifier struct {
	ntHash []byte
}

// responseKey is NTOWFv2: HMAC-MD5(NT hash, UNICODE(upper(user) + domain)).
func (v ntlmV2Verifier) responseKey(user, domain string) []byte {
	return hmacMD5(v.ntHash, utf16le(strings.ToUpper(user)+domain))
}

type ntlmType3 struct {
	flags              uint32
	lm, nt             []byte
	domain, user, host string
	rawUser            []byte
}

func parseType3(t *testing.T, msg []byte) ntlmType3 {
	t.Helper()
	require.GreaterOrEqual(t, len(msg), 64)
	require.Equal(t, "NTLMSSP\x00", string(msg[:8]))
	require.EqualValues(t, 3, binary.LittleEndian.Uint32(msg[8:]))
	field := func(at int) []byte {
		l := int(binary.LittleEndian.Uint16(msg[at:]))
		off := int(binary.LittleEndian.Uint32(msg[at+4:]))
		require.LessOrEqual(t, off+l, len(msg), "field at %d out of range", at)
		return msg[off : off+l]
	}
	m := ntlmType3{flags: binary.LittleEndian.Uint32(msg[60:]), lm: field(12), nt: field(20)}
	str := func(b []byte) string {
		if m.flags&flagUnicode == 0 {
			return string(b)
		}
		require.Zero(t, len(b)%2)
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u))
	}
	m.rawUser = field(36)
	m.domain, m.user, m.host = str(field(28)), str(m.rawUser), str(field(44))
	return m
}

// verify reports whether the message proves knowledge of the password for
// the given server challenge and target info. It accepts NTLMv2 only.
func (v ntlmV2Verifier) verify(t *testing.T, m ntlmType3, serverChallenge, targetInfo []byte) bool {
	t.Helper()
	require.Greater(t, len(m.nt), 24, "an NTLMv1 response is 24 bytes; only NTLMv2 may be sent")
	key := v.responseKey(m.user, m.domain)
	proof, blob := m.nt[:16], m.nt[16:]
	require.GreaterOrEqual(t, len(blob), 28)
	require.Equal(t, []byte{1, 1}, blob[:2], "NTLMv2 client challenge blob version")
	if len(targetInfo) > 0 {
		require.True(t, bytes.Contains(blob, targetInfo[:len(targetInfo)-4]), "the blob carries the server's target info")
	}
	ok := hmac.Equal(proof, hmacMD5(key, serverChallenge, blob))
	if len(m.lm) > 0 && !bytes.Equal(m.lm, make([]byte, len(m.lm))) {
		// LMv2: HMAC-MD5(key, server challenge + client challenge) +
		// client challenge. Anything else would be LM or NTLMv1.
		require.Len(t, m.lm, 24)
		cc := blob[16:24]
		require.Equal(t, cc, m.lm[16:], "LMv2 carries the blob's client challenge")
		ok = ok && hmac.Equal(m.lm[:16], hmacMD5(key, serverChallenge, cc))
	}
	return ok
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// The verifier itself reproduces MS-NLMP 4.2.4.1.1: NTOWFv2 for User,
// Domain and Password.
func TestNTLMVerifierMatchesSpec(t *testing.T) {
	t.Parallel()
	v := ntlmV2Verifier{ntHash: mustHex(t, specNTHash)}
	require.Equal(t, "0c868a403bfd7a93a3001ef22ef02e3f", hex.EncodeToString(v.responseKey("User", "Domain")))
}

// answerType2 runs an NTLM session up to its AUTHENTICATE message.
func answerType2(t *testing.T, user, password string, type2 []byte) (ntlmType3, error) {
	t.Helper()
	ctx := context.Background()
	s, err := wsproxy.NTLMAuth{}.Start(ctx, nil, "h:443", &wsproxy.Credentials{Username: user, Password: password})
	require.NoError(t, err)
	_, err = s.Answer(ctx, wsproxy.Challenge{Scheme: "NTLM"})
	require.NoError(t, err)
	v, err := s.Answer(ctx, wsproxy.Challenge{Scheme: "NTLM", Token68: base64.StdEncoding.EncodeToString(type2)})
	if err != nil {
		return ntlmType3{}, err
	}
	token, ok := strings.CutPrefix(v, "NTLM ")
	require.True(t, ok)
	msg, err := base64.StdEncoding.DecodeString(token)
	require.NoError(t, err)
	return parseType3(t, msg), nil
}

// Each real CHALLENGE message gets an NTLMv2 answer that an independent
// verifier accepts for the right password only; LM_KEY and KEY_EXCH are
// never negotiated, and OEM challenges get OEM names.
func TestNTLMChallengeVariants(t *testing.T) {
	t.Parallel()
	v := ntlmV2Verifier{ntHash: mustHex(t, specNTHash)}
	for _, tc := range ntlmType2 {
		for _, user := range []string{`Domain\User`, "User"} {
			t.Run(tc.name+"/"+user, func(t *testing.T) {
				t.Parallel()
				type2 := mustHex(t, tc.msg)
				challengeFlags := binary.LittleEndian.Uint32(type2[20:])
				m, err := answerType2(t, user, specPassword, type2)
				require.NoError(t, err)
				require.Zero(t, m.flags&flagLMKey, "LM_KEY is never negotiated")
				require.Zero(t, m.flags&flagKeyExch, "KEY_EXCH is never negotiated")
				if challengeFlags&flagUnicode == 0 {
					require.Equal(t, uint32(flagOEM), m.flags&(flagOEM|flagUnicode), "OEM challenge: OEM strings")
					require.Equal(t, []byte("User"), m.rawUser, "one byte per character")
				} else {
					require.NotZero(t, m.flags&flagUnicode)
					require.Equal(t, utf16le("User"), m.rawUser)
				}
				require.Equal(t, "User", m.user)
				if strings.Contains(user, `\`) {
					require.Equal(t, "Domain", m.domain)
				}
				var info []byte
				if len(type2) >= 48 {
					l := binary.LittleEndian.Uint16(type2[40:])
					off := binary.LittleEndian.Uint32(type2[44:])
					info = type2[off : off+uint32(l)]
				}
				require.True(t, v.verify(t, m, type2[24:32], info), "the verifier accepts the response")

				wrong, err := answerType2(t, user, "not the password", type2)
				require.NoError(t, err)
				require.False(t, v.verify(t, wrong, type2[24:32], info), "the verifier refuses a wrong password")
			})
		}
	}
}

// A server asking for OEM names cannot receive a name outside ASCII: the
// answer fails with an error saying why, and the password is not in it.
func TestNTLMOEMNonASCIIName(t *testing.T) {
	t.Parallel()
	_, err := answerType2(t, "Jürgen", specPassword, mustHex(t, ntlmType2[0].msg))
	require.ErrorContains(t, err, "OEM code page")
	require.NotContains(t, err.Error(), specPassword)
}
