package wsproxy

import "github.com/wsproxy/wsproxy/internal/httpauth"

// Test hooks for the authentication code, for the black-box tests.

// DigestAnswerForTest answers ch as the first request of a Digest session
// for method and uri with a fixed client nonce, as the RFC examples do.
func DigestAnswerForTest(ch Challenge, user, password, method, uri, cnonce string) (string, error) {
	return httpauth.DigestAnswerForTest(httpauth.Challenge(ch), user, password, method, uri, cnonce)
}

// ParseNetrcForTest exposes the netrc parser.
func ParseNetrcForTest(data, host string) (*Credentials, error) {
	c, err := httpauth.ParseNetrc(data, host)
	return (*Credentials)(c), err
}
