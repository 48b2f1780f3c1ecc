package wsproxy

import "github.com/wsproxy/wsproxy/internal/httpauth/negotiate"

// sspiAvailable: Windows answers Negotiate through SSPI.
const sspiAvailable = true

// sspiSession is the SSPI session for the proxy at host: the logon
// session's credentials, or creds when they carry a user and password.
func sspiSession(host, spn string, creds *Credentials, trace func(format string, args ...any)) (negotiate.Session, bool) {
	var user, pass string
	if creds != nil {
		user, pass = creds.Username, creds.Password
	}
	plan, ok := negotiate.PlanSSPI([]string{negotiate.PackageNegotiate}, host, spn, user, pass)
	if !ok {
		return nil, false
	}
	return negotiate.NewSSPISession(plan, trace), true
}
