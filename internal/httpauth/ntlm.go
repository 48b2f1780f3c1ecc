package httpauth

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Azure/go-ntlmssp"
)

// NTLM (NTLMv2 responses only) on go-ntlmssp: the root package's
// NTLMAuth documents the behaviour; this file holds the mechanics.

// NewNTLM returns a session for one CONNECT with c. It fails when c is
// empty (anonymous NTLM is not supported).
func NewNTLM(c Credentials) (*NTLMSession, error) {
	if c.Username == "" && c.Password == "" {
		return nil, errors.New("NTLM needs a user name and password")
	}
	return &NTLMSession{creds: &c}, nil
}

// NTLMSession runs the three legs of NTLM on one connection:
// negotiate, challenge, authenticate.
type NTLMSession struct {
	creds *Credentials // dropped once the authenticate message is built
	state int          // 0 nothing sent, 1 negotiate sent, 2 authenticate sent
}

// Answer sends the negotiate message to a bare challenge, then the
// authenticate message to the proxy's challenge message; anything else is
// a refusal (ErrRejected) or a protocol error.
func (s *NTLMSession) Answer(ch Challenge) (string, error) {
	switch {
	case s.state == 0 && ch.Token68 == "":
		msg, err := ntlmssp.NewNegotiateMessage("", "")
		if err != nil {
			return "", fmt.Errorf("build negotiate message: %w", err)
		}
		s.state = 1
		return "NTLM " + base64.StdEncoding.EncodeToString(msg), nil
	case s.state == 1 && ch.Token68 != "":
		challenge, err := base64.StdEncoding.DecodeString(ch.Token68)
		if err != nil {
			return "", fmt.Errorf("the proxy's challenge message is not base64: %w", err)
		}
		msg, err := ntlmAuthenticateMessage(challenge, s.creds.Username, s.creds.Password)
		if err != nil {
			return "", fmt.Errorf("answer the proxy's challenge: %w", err)
		}
		s.creds = nil
		s.state = 2
		return "NTLM " + base64.StdEncoding.EncodeToString(msg), nil
	case s.state == 1:
		return "", fmt.Errorf("%w (the proxy answered the NTLM negotiate message with a bare challenge)", ErrRejected)
	case s.state == 0:
		return "", errors.New("the proxy sent an NTLM challenge message before any negotiate message")
	}
	return "", ErrRejected
}

// ConnectionBound is true for the authenticate message: it answers a
// challenge that is valid on its connection only.
func (s *NTLMSession) ConnectionBound() bool { return s.state == 2 }

// Done reports whether the authenticate message has been sent.
func (s *NTLMSession) Done() bool { return s.state == 2 }

// normalizeNTLMChallenge rewrites a CHALLENGE message into the 48-byte
// layout with valid field offsets. Older servers, and squid's
// ntlm_fake_auth, send the shorter layout without TargetInfo, sometimes
// with an uninitialised TargetName offset; go-ntlmssp needs the full one.
// Fields that point outside the message are dropped (the client does not
// use TargetName; an absent TargetInfo is legal). Messages too short to
// hold a server challenge are returned as they are, for the library to
// refuse.
func normalizeNTLMChallenge(b []byte) []byte {
	const fixed = 48
	if len(b) < 32 {
		return b
	}
	out := make([]byte, fixed, fixed+len(b))
	copy(out, b[:32]) // signature, type, TargetName fields, flags, server challenge
	field := func(at int, present bool) {
		var l, off int
		if present {
			l = int(binary.LittleEndian.Uint16(b[at:]))
			off = int(binary.LittleEndian.Uint32(b[at+4:]))
		}
		if l == 0 || off < 32 || off > len(b) || l > len(b)-off {
			l, off = 0, 0
		}
		binary.LittleEndian.PutUint16(out[at:], uint16(l))
		binary.LittleEndian.PutUint16(out[at+2:], uint16(l))
		binary.LittleEndian.PutUint32(out[at+4:], uint32(len(out)))
		out = append(out, b[off:off+l]...)
	}
	field(12, true)            // TargetName
	field(40, len(b) >= fixed) // TargetInfo
	return out
}
