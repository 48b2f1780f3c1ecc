package negotiate

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
)

// Session is one connection's exchange for a connection-based scheme:
// Kerberos through gokrb5 (*Context) everywhere, or Negotiate/NTLM through
// Windows SSPI (NewSSPISession, Windows only). The Dialer's 407 loop drives
// it the same way whatever is underneath:
//
//	token, err := s.Start(ctx)          // first "Proxy-Authorization: <scheme> <token>"
//	// 407 with "<scheme> <token>"  -> token, err = s.Next(challengeToken)
//	// 407 with a bare "<scheme>"   -> s.Next(nil): the proxy refused; err is ErrRejected
//	// 200                          -> err = s.Verify(tokenOfThe200OrNil)
//	s.Close()
type Session interface {
	Start(ctx context.Context) ([]byte, error)
	Next(challenge []byte) ([]byte, error)
	Verify(token []byte) error
	Close() error
}

var _ Session = (*Context)(nil)

// Next answers a 407 that follows this Context's token. Kerberos needs a
// single leg, so any 407 is a refusal: the error is KindRejected (with the
// Kerberos error code when the proxy sent one) and must not be retried.
func (x *Context) Next(challenge []byte) ([]byte, error) {
	if len(challenge) > 0 {
		if a, err := parseAnswer(challenge); err == nil && a.KRBError != nil {
			e := x.Rejected().(*Error)
			e.Detail += fmt.Sprintf(" (Kerberos error %d)", a.KRBError.ErrorCode)
			return nil, e
		}
	}
	return nil, x.Rejected()
}

// Close releases nothing: a Context holds no OS resources. It exists so
// that *Context is a Session.
func (x *Context) Close() error { return nil }

// EncodeToken is the header parameter for a token: standard base64.
func EncodeToken(token []byte) string { return base64.StdEncoding.EncodeToString(token) }

// DecodeToken decodes the token68 of a "Negotiate <token>" or "NTLM
// <token>" challenge: standard base64, padded or not, surrounding spaces
// ignored. An empty parameter gives nil, nil (a bare challenge). Tokens
// over 64 KiB are refused.
func DecodeToken(param string) ([]byte, error) {
	param = strings.TrimSpace(param)
	if param == "" {
		return nil, nil
	}
	if len(param) > base64.StdEncoding.EncodedLen(maxTokenSize) {
		return nil, fmt.Errorf("negotiate: token of %d characters is over the %d-byte limit", len(param), maxTokenSize)
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(param, "="))
	if err != nil {
		return nil, fmt.Errorf("negotiate: token is not base64")
	}
	return b, nil
}

// SSPI packages.
const (
	PackageNegotiate = "Negotiate" // SPNEGO: Kerberos when a ticket can be had, else NTLM inside it
	PackageNTLM      = "NTLM"
)

// SSPIPlan is how Windows answers a proxy: which security package, which
// target name, whose credentials.
type SSPIPlan struct {
	Package    string // PackageNegotiate or PackageNTLM
	TargetName string // "HTTP/proxy.example.com": the SPN (unused by NTLM)
	// Domain, User and Password are explicit credentials; with User empty
	// the logon session's own credentials are used (single sign-on).
	Domain, User, Password string
}

// PlanSSPI decides, like a browser on Windows, how to answer a proxy that
// offers the given schemes (names as in Proxy-Authenticate, any case):
// Negotiate when offered, else NTLM, else ok is false. spn overrides the
// target name (a "@REALM" suffix is dropped: SSPI finds the realm itself);
// otherwise it is "HTTP/" + the lower-cased proxy host. Explicit
// credentials are used only when both user and password are given; user may
// be "DOMAIN\name", "name@domain" (a UPN, passed whole) or "name".
func PlanSSPI(offered []string, proxyHost, spn, user, password string) (plan SSPIPlan, ok bool) {
	has := func(s string) bool {
		for _, o := range offered {
			if strings.EqualFold(strings.TrimSpace(o), s) {
				return true
			}
		}
		return false
	}
	switch {
	case has(PackageNegotiate):
		plan.Package = PackageNegotiate
	case has(PackageNTLM):
		plan.Package = PackageNTLM
	default:
		return SSPIPlan{}, false
	}
	if spn != "" {
		plan.TargetName, _, _ = strings.Cut(spn, "@")
	} else {
		plan.TargetName = defaultSPN(proxyHost)
	}
	if user != "" && password != "" {
		plan.Domain, plan.User = SplitWindowsUser(user)
		plan.Password = password
	}
	return plan, true
}

// SplitWindowsUser splits "DOMAIN\name" into its domain and name. A UPN
// ("name@domain") and a bare name come back whole with no domain, as SSPI
// wants them.
func SplitWindowsUser(user string) (domain, name string) {
	if d, n, ok := strings.Cut(user, `\`); ok {
		return d, n
	}
	return "", user
}

// defaultSPN is the browser's SPN for a proxy host: HTTP/ and the host as
// written, lower-cased, without a trailing dot.
func defaultSPN(host string) string {
	return "HTTP/" + strings.ToLower(strings.TrimSuffix(host, "."))
}

// SSPIFor returns the SSPI session that answers Negotiate for the proxy at
// host on Windows: the logon session's credentials, or user and password
// when both are given; spn overrides the target name. Elsewhere, and when
// no plan fits, ok is false.
func SSPIFor(host, spn, user, password string, trace func(format string, args ...any)) (s Session, ok bool) {
	if !SSPIAvailable {
		return nil, false
	}
	plan, ok := PlanSSPI([]string{PackageNegotiate}, host, spn, user, password)
	if !ok {
		return nil, false
	}
	return newSSPISession(plan, trace), true
}
