package httpauth

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// FuzzNTLMChallenge feeds arbitrary CHALLENGE messages to the code that
// answers them: it must not panic, and every answer it builds is an
// AUTHENTICATE message whose fields lie inside it, that negotiates neither
// LM_KEY nor KEY_EXCH, and whose string encoding is the one the challenge
// asked for (OEM when UNICODE is not set).
func FuzzNTLMChallenge(f *testing.F) {
	for _, s := range []string{
		// OEM with LM_KEY, 40-byte layout (flags 0x00018286).
		"4e544c4d53535000020000000700070028000000868201000123456789abcdef000000000000000057535052 4f5859",
		// MS-NLMP 4.2.4.3 (0xe28a8233, target info).
		"4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000",
		// squid ntlm_fake_auth's short message.
		"4e544c4d535350000200000009000900aeaaaaaa078208a298ae765827f864580000000000003a00574f524b47524f5550",
	} {
		b, err := hex.DecodeString(stripSpaces(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "DOMAIN\\alice")
	}
	f.Fuzz(func(t *testing.T, challenge []byte, user string) {
		msg, err := ntlmAuthenticateMessage(challenge, user, "pw")
		if err != nil {
			return
		}
		if len(msg) < ntlmAuthHeaderLen || string(msg[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(msg[8:]) != 3 {
			t.Fatalf("not an AUTHENTICATE message: %x", msg)
		}
		for _, at := range ntlmAuthFields {
			l := int(binary.LittleEndian.Uint16(msg[at:]))
			off := int(binary.LittleEndian.Uint32(msg[at+4:]))
			if off+l > len(msg) {
				t.Fatalf("field at %d out of range", at)
			}
		}
		flags := binary.LittleEndian.Uint32(msg[ntlmAuthFlagsAt:])
		if flags&(ntlmFlagLMKey|ntlmFlagKeyExch) != 0 {
			t.Fatalf("negotiates LM_KEY or KEY_EXCH: %#08x", flags)
		}
		asked := binary.LittleEndian.Uint32(challenge[20:])&ntlmFlagUnicode != 0
		if got := flags&ntlmFlagUnicode != 0; got != asked {
			t.Fatalf("challenge UNICODE=%v, answer UNICODE=%v", asked, got)
		}
		if ntResp := binary.LittleEndian.Uint16(msg[20:]); ntResp <= 24 {
			t.Fatalf("NT response of %d bytes is not NTLMv2", ntResp)
		}
	})
}

func stripSpaces(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			out = append(out, s[i])
		}
	}
	return string(out)
}
