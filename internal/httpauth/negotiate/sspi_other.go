//go:build !windows

package negotiate

// SSPIAvailable reports whether this platform answers Negotiate through
// Windows SSPI; elsewhere it is pure-Go Kerberos.
const SSPIAvailable = false

// newSSPISession has no SSPI to offer outside Windows.
func newSSPISession(SSPIPlan, func(format string, args ...any)) Session { return nil }
