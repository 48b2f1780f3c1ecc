package wsproxy

// Test hooks for the authentication code, for the black-box tests.

// DigestAnswerForTest answers ch as the first request of a Digest session
// for method and uri with a fixed client nonce, as the RFC examples do.
func DigestAnswerForTest(ch Challenge, user, password, method, uri, cnonce string) (string, error) {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return "", err
	}
	s := &digestSession{creds: &Credentials{Username: user, Password: password}, user: user}
	if err := s.adopt(dc); err != nil {
		return "", err
	}
	return s.answer(method, uri, cnonce), nil
}

// ParseNetrcForTest exposes the netrc parser.
var ParseNetrcForTest = parseNetrc
