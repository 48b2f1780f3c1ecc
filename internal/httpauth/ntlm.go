package wsproxy

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"

	"github.com/Azure/go-ntlmssp"
)

// NTLMAuth is the NTLM scheme (NTLMv2 responses only), with the message
// encoding of github.com/Azure/go-ntlmssp. Its three legs, negotiate →
// challenge → authenticate, must run on one connection: the Dialer reads
// each 407 body fully and sends the next CONNECT on the same socket. A
// proxy that closes the connection after its challenge makes the dial fail
// with a message saying so (NTLM cannot complete across connections).
//
// The user name may carry a domain as "DOMAIN\user" or "user@domain".
// Challenges offering NTLMSSP_NEGOTIATE_LM_KEY or key exchange are answered
// with NTLMv2 responses without negotiating either, as Windows clients do;
// LM and NTLMv1 responses are never sent. A challenge without the UNICODE
// flag gets the names in OEM form (ASCII names only; others fail the dial
// with an error saying so). After a success the Dialer caches the credentials for the
// proxy (NTLM has no realm) so later dials skip the callback, but each dial
// still runs the three legs: NTLM authenticates a connection, not a request.
type NTLMAuth struct{}

// Name returns "NTLM".
func (NTLMAuth) Name() string { return "NTLM" }

// Strength returns StrengthNTLM.
func (NTLMAuth) Strength(Challenge) int { return StrengthNTLM }

// NeedsCredentials returns true.
func (NTLMAuth) NeedsCredentials() bool { return true }

// Start returns a session for one CONNECT. It fails when creds is nil or
// empty (anonymous NTLM is not supported).
func (NTLMAuth) Start(_ context.Context, _ *url.URL, _ string, creds *Credentials) (AuthSession, error) {
	if creds == nil || creds.Username == "" && creds.Password == "" {
		return nil, errors.New("NTLM needs a user name and password")
	}
	c := *creds
	return &ntlmSession{creds: &c}, nil
}

type ntlmSession struct {
	creds *Credentials // dropped once the authenticate message is built
	state int          // 0 nothing sent, 1 negotiate sent, 2 authenticate sent
}

func (s *ntlmSession) Answer(_ context.Context, ch Challenge) (string, error) {
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
		return "", fmt.Errorf("%w (the proxy answered the NTLM negotiate message with a bare challenge)", ErrProxyCredentialsRejected)
	case s.state == 0:
		return "", errors.New("the proxy sent an NTLM challenge message before any negotiate message")
	}
	return "", ErrProxyCredentialsRejected
}

// ConnectionBound is true for the authenticate message: it answers a
// challenge that is valid on its connection only.
func (s *ntlmSession) ConnectionBound() bool { return s.state == 2 }

func (s *ntlmSession) Done() bool { return s.state == 2 }

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
