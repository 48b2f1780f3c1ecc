package httpauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wsproxy/wsproxy/internal/httpauth/negotiate"
)

// Markers the 407 loop reads (with errors.Is) on an error of a scheme's
// Start or of a session's Answer.
var (
	// ErrSchemeUnavailable: nothing was sent to the proxy and nothing can
	// be (no Kerberos ticket): the loop tries the next offered scheme.
	ErrSchemeUnavailable = errors.New("scheme unavailable")
	// ErrFinalRefusal: the proxy saw and refused an attempt (a Kerberos
	// ticket) that no other credential source or scheme should follow,
	// even though the error also matches ErrRejected.
	ErrFinalRefusal = errors.New("final refusal")
)

// markedError is err that also matches mark with errors.Is.
type markedError struct {
	err  error
	mark error
}

func (e *markedError) Error() string        { return e.err.Error() }
func (e *markedError) Unwrap() error        { return e.err }
func (e *markedError) Is(target error) bool { return target == e.mark }

// Unavailable marks err with ErrSchemeUnavailable.
func Unavailable(err error) error { return &markedError{err: err, mark: ErrSchemeUnavailable} }

// FinalRefusal marks err as a refusal (ErrRejected) that ends the dial.
func FinalRefusal(err error) error {
	return &markedError{err: fmt.Errorf("%w: %w", ErrRejected, err), mark: ErrFinalRefusal}
}

// NegotiateSession carries one connection's Negotiate exchange (RFC 4559)
// in Proxy-Authorization and Proxy-Authenticate headers, over a mechanism
// session (pure-Go Kerberos or SSPI).
type NegotiateSession struct {
	x     negotiate.Session
	first []byte // Start's token, for the first answer
	sent  bool   // the first token went out
	bound bool   // the last answer continues a multi-leg exchange
}

// StartNegotiate makes x's first token. The error is the mechanism's:
// negotiate.FallbackAllowed tells whether nothing reached the proxy.
func StartNegotiate(ctx context.Context, x negotiate.Session) (*NegotiateSession, error) {
	tok, err := x.Start(ctx)
	if err != nil {
		x.Close()
		return nil, err
	}
	return &NegotiateSession{x: x, first: tok}, nil
}

// Answer sends the first token, then hands each later challenge's token to
// the mechanism: Kerberos refuses for good (one leg only; FinalRefusal),
// SSPI may continue.
func (s *NegotiateSession) Answer(ch Challenge) (string, error) {
	if !s.sent {
		s.sent = true
		return "Negotiate " + negotiate.EncodeToken(s.first), nil
	}
	tok, err := negotiate.DecodeToken(ch.Token68)
	if err != nil {
		return "", FinalRefusal(fmt.Errorf("the proxy's Negotiate challenge: %w", err))
	}
	out, err := s.x.Next(tok)
	if err != nil {
		return "", FinalRefusal(err)
	}
	s.bound = true
	return "Negotiate " + negotiate.EncodeToken(out), nil
}

// ConnectionBound is true for a continuation leg (SSPI's NTLM inside
// SPNEGO); a Kerberos token may go on any connection.
func (s *NegotiateSession) ConnectionBound() bool { return s.bound }

// Done is false: every 407 goes to Answer, which refuses a rejected ticket
// for good instead of letting the Dialer try other credentials.
func (s *NegotiateSession) Done() bool { return false }

// VerifySuccess checks the mutual-authentication token of the proxy's 2xx
// (its Proxy-Authenticate values), if it sent one; none is fine.
func (s *NegotiateSession) VerifySuccess(proxyAuthenticate []string) error {
	var tok []byte
	chs, _ := ParseChallenges(proxyAuthenticate)
	for _, ch := range chs {
		if strings.EqualFold(ch.Scheme, "Negotiate") && ch.Token68 != "" {
			var err error
			if tok, err = negotiate.DecodeToken(ch.Token68); err != nil {
				return fmt.Errorf("%w: %w", negotiate.ErrMutualAuth, err)
			}
			break
		}
	}
	return s.x.Verify(tok)
}

// Close releases what the mechanism holds (SSPI handles).
func (s *NegotiateSession) Close() error { return s.x.Close() }
