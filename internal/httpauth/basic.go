package httpauth

import (
	"encoding/base64"
	"errors"
)

// ErrRejected says the proxy refused the credentials that were sent. The
// root package exports it as ErrProxyCredentialsRejected.
var ErrRejected = errors.New("proxy rejected the credentials")

// Credentials are a user name and password. The root package's
// Credentials has the same fields and converts to and from it.
type Credentials struct {
	Username string
	Password string
}

// BasicValue is the Proxy-Authorization value of Basic (RFC 7617) for c.
func BasicValue(c Credentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}

// BasicSession answers one Basic challenge; a second one means the
// credentials were refused.
type BasicSession struct {
	value string
	sent  bool
}

// NewBasic returns a session for c. With sent, its answer has already gone
// (preemptively): the next challenge is a refusal.
func NewBasic(c Credentials, sent bool) *BasicSession {
	return &BasicSession{value: BasicValue(c), sent: sent}
}

// Answer returns the Basic value the first time, then ErrRejected.
func (s *BasicSession) Answer(Challenge) (string, error) {
	if s.sent {
		return "", ErrRejected
	}
	s.sent = true
	return s.value, nil
}

// Value is the Proxy-Authorization value the session sends.
func (s *BasicSession) Value() string { return s.value }

// ConnectionBound is false: Basic is valid on any connection.
func (s *BasicSession) ConnectionBound() bool { return false }

// Done reports whether the one answer has been sent.
func (s *BasicSession) Done() bool { return s.sent }
