//go:build !windows

package wsproxy

import "github.com/wsproxy/wsproxy/internal/httpauth/negotiate"

// sspiAvailable: outside Windows, Negotiate is pure-Go Kerberos.
const sspiAvailable = false

// sspiSession has no SSPI to offer outside Windows.
func sspiSession(string, string, *Credentials, func(string, ...any)) (negotiate.Session, bool) {
	return nil, false
}
