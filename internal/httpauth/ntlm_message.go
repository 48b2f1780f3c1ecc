package httpauth

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Azure/go-ntlmssp"
)

// NTLM negotiate flags (MS-NLMP 2.2.2.5) that the client adjusts before
// go-ntlmssp builds the AUTHENTICATE message.
const (
	ntlmFlagUnicode = 0x00000001 // NTLMSSP_NEGOTIATE_UNICODE
	ntlmFlagOEM     = 0x00000002 // NTLM_NEGOTIATE_OEM
	ntlmFlagLMKey   = 0x00000080 // NTLMSSP_NEGOTIATE_LM_KEY
	ntlmFlagKeyExch = 0x40000000 // NTLMSSP_NEGOTIATE_KEY_EXCH
)

// ntlmAuthenticateMessage answers a CHALLENGE message with an AUTHENTICATE
// message carrying NTLMv2 responses only, for the flags real servers send:
//
//   - NTLMSSP_NEGOTIATE_LM_KEY and NTLMSSP_NEGOTIATE_KEY_EXCH are offers,
//     not demands: the client's AUTHENTICATE flags are the ones it agrees
//     to. Modern Windows clients answer such challenges with NTLMv2 and do
//     not negotiate LM_KEY; a proxy client never signs or seals, so it has
//     no use for an exchanged session key either. Both are cleared.
//   - A challenge without NTLMSSP_NEGOTIATE_UNICODE asks for OEM strings:
//     the domain, user and workstation fields are then sent as OEM
//     (ASCII; other characters cannot be encoded without knowing the
//     server's code page and are refused) and the flags say OEM. The
//     NTLMv2 response itself hashes the Unicode names either way.
//
// The cryptography stays in go-ntlmssp, which refuses the two flags above
// and builds Unicode strings only; this function adapts the flags it sees
// and the strings it wrote.
func ntlmAuthenticateMessage(challenge []byte, username, password string) ([]byte, error) {
	cm := normalizeNTLMChallenge(challenge) // a copy: the flags are changed in it
	if len(cm) < 32 {
		return nil, fmt.Errorf("the challenge message is %d bytes, too short to hold a server challenge", len(cm))
	}
	flags := binary.LittleEndian.Uint32(cm[20:])
	oem := flags&ntlmFlagUnicode == 0
	flags &^= ntlmFlagLMKey | ntlmFlagKeyExch
	if oem {
		// The library reads TargetName as UTF-16 once UNICODE is set; the
		// answer does not use it, so it is left out.
		flags |= ntlmFlagUnicode
		binary.LittleEndian.PutUint32(cm[12:], 0)
	}
	binary.LittleEndian.PutUint32(cm[20:], flags)
	msg, err := ntlmssp.NewAuthenticateMessage(cm, username, password, nil)
	if err != nil || !oem {
		return msg, err
	}
	return ntlmOEMStrings(msg)
}

// AUTHENTICATE message layout as go-ntlmssp writes it: a 64-byte header
// (MS-NLMP 2.2.1.3, without Version and MIC) with six (length, max length,
// offset) fields, then the payload.
const (
	ntlmAuthHeaderLen = 64
	ntlmAuthFlagsAt   = 60
)

// ntlmAuthFields are the offsets of the AUTHENTICATE message's payload
// fields: LM and NT responses, domain, user, workstation, session key.
var ntlmAuthFields = [...]int{12, 20, 28, 36, 44, 52}

// ntlmOEMStrings rewrites an AUTHENTICATE message built with UTF-16LE
// strings so that its domain, user and workstation are OEM strings and its
// flags say OEM instead of Unicode.
func ntlmOEMStrings(msg []byte) ([]byte, error) {
	if len(msg) < ntlmAuthHeaderLen {
		return nil, errors.New("authenticate message shorter than its header")
	}
	out := make([]byte, ntlmAuthHeaderLen, len(msg))
	copy(out, msg[:ntlmAuthHeaderLen])
	for _, at := range ntlmAuthFields {
		l := int(binary.LittleEndian.Uint16(msg[at:]))
		off := int(binary.LittleEndian.Uint32(msg[at+4:]))
		if off > len(msg) || l > len(msg)-off {
			return nil, errors.New("authenticate message field out of range")
		}
		field := msg[off : off+l]
		if at >= 28 && at <= 44 { // domain, user, workstation
			s, err := oemFromUTF16LE(field)
			if err != nil {
				return nil, err
			}
			field = s
		}
		binary.LittleEndian.PutUint16(out[at:], uint16(len(field)))
		binary.LittleEndian.PutUint16(out[at+2:], uint16(len(field)))
		binary.LittleEndian.PutUint32(out[at+4:], uint32(len(out)))
		out = append(out, field...)
	}
	flags := binary.LittleEndian.Uint32(out[ntlmAuthFlagsAt:])
	flags = flags&^ntlmFlagUnicode | ntlmFlagOEM
	binary.LittleEndian.PutUint32(out[ntlmAuthFlagsAt:], flags)
	return out, nil
}

// errNTLMNotOEM says a name cannot be sent to a server that asked for OEM
// strings.
var errNTLMNotOEM = errors.New("the proxy asked for NTLM names in its OEM code page, which only ASCII names fit; the user, domain or workstation name has other characters")

// oemFromUTF16LE converts a UTF-16LE string to its OEM form. Only ASCII is
// converted: the server's OEM code page is not known.
func oemFromUTF16LE(b []byte) ([]byte, error) {
	if len(b)%2 != 0 {
		return nil, errors.New("authenticate message string of odd length")
	}
	out := make([]byte, len(b)/2)
	for i := range out {
		u := binary.LittleEndian.Uint16(b[2*i:])
		if u >= 0x80 {
			return nil, errNTLMNotOEM
		}
		out[i] = byte(u)
	}
	return out, nil
}
