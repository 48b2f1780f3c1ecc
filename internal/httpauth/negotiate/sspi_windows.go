package negotiate

import (
	"context"
	"fmt"

	"github.com/alexbrainman/sspi"
	sspinegotiate "github.com/alexbrainman/sspi/negotiate"
	sspintlm "github.com/alexbrainman/sspi/ntlm"
)

// SSPIAvailable reports whether this platform answers Negotiate through
// Windows SSPI: it does on Windows.
const SSPIAvailable = true

func newSSPISession(plan SSPIPlan, trace func(format string, args ...any)) Session {
	return NewSSPISession(plan, trace)
}

// NewSSPISession returns a Session that answers the proxy through Windows
// SSPI as plan says (see PlanSSPI): with no explicit user, the logon
// session's credentials (AcquireCredentialsHandle with no identity), so no
// password is needed anywhere. Windows only. Close releases the handles.
func NewSSPISession(plan SSPIPlan, trace func(format string, args ...any)) Session {
	return &sspiSession{plan: plan, trace: trace}
}

type sspiSession struct {
	plan  SSPIPlan
	trace func(format string, args ...any)
	cred  *sspi.Credentials
	neg   *sspinegotiate.ClientContext
	ntlm  *sspintlm.ClientContext
	done  bool
}

func (s *sspiSession) tracef(format string, args ...any) {
	if s.trace != nil {
		s.trace("negotiate: sspi: "+format, args...)
	}
}

func (s *sspiSession) who() string {
	if s.plan.User == "" {
		return "the logon session's credentials"
	}
	if s.plan.Domain != "" {
		return s.plan.Domain + `\` + s.plan.User
	}
	return s.plan.User
}

// Start acquires the credentials and makes the first token.
func (s *sspiSession) Start(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.cred != nil {
		return nil, fmt.Errorf("negotiate: sspi: Start called twice on one session")
	}
	var err error
	switch s.plan.Package {
	case PackageNegotiate:
		if s.plan.User == "" {
			s.cred, err = sspinegotiate.AcquireCurrentUserCredentials()
		} else {
			s.cred, err = sspinegotiate.AcquireUserCredentials(s.plan.Domain, s.plan.User, s.plan.Password)
		}
	case PackageNTLM:
		if s.plan.User == "" {
			s.cred, err = sspintlm.AcquireCurrentUserCredentials()
		} else {
			s.cred, err = sspintlm.AcquireUserCredentials(s.plan.Domain, s.plan.User, s.plan.Password)
		}
	default:
		return nil, fmt.Errorf("negotiate: sspi: unknown package %q", s.plan.Package)
	}
	if err != nil {
		return nil, &Error{Kind: KindNoTicket, Principal: s.who(),
			Detail: fmt.Sprintf("SSPI %s credentials of %s unavailable", s.plan.Package, s.who()), Err: err}
	}
	s.tracef("%s with %s, target %s", s.plan.Package, s.who(), s.plan.TargetName)
	var token []byte
	if s.plan.Package == PackageNegotiate {
		s.neg, token, err = sspinegotiate.NewClientContextWithFlags(s.cred, s.plan.TargetName,
			sspi.ISC_REQ_CONNECTION|sspi.ISC_REQ_MUTUAL_AUTH)
	} else {
		s.ntlm, token, err = sspintlm.NewClientContext(s.cred)
	}
	if err != nil {
		return nil, &Error{Kind: KindNoTicket, Principal: s.who(), SPN: s.plan.TargetName,
			Detail: fmt.Sprintf("SSPI %s could not start for %s", s.plan.Package, s.plan.TargetName), Err: err}
	}
	return token, nil
}

// Next answers a 407 carrying a continuation token (NTLM's challenge, or
// SPNEGO's next leg); a bare 407 is a refusal.
func (s *sspiSession) Next(challenge []byte) ([]byte, error) {
	if len(challenge) == 0 || s.done {
		return nil, s.rejected()
	}
	switch {
	case s.neg != nil:
		done, out, err := s.neg.Update(challenge)
		if err != nil {
			return nil, &Error{Kind: KindRejected, SPN: s.plan.TargetName, Detail: "SSPI refused the proxy's Negotiate challenge", Err: err}
		}
		s.done = done
		return out, nil
	case s.ntlm != nil:
		out, err := s.ntlm.Update(challenge)
		if err != nil {
			return nil, &Error{Kind: KindRejected, Detail: "SSPI refused the proxy's NTLM challenge", Err: err}
		}
		s.done = true
		return out, nil
	}
	return nil, fmt.Errorf("negotiate: sspi: Next before Start")
}

func (s *sspiSession) rejected() error {
	if s.plan.Package == PackageNTLM {
		return &Error{Kind: KindRejected, Detail: "the proxy rejected the NTLM credentials of " + s.who()}
	}
	return RejectedError(s.plan.TargetName)
}

// Verify completes a Negotiate context with the 200's mutual-authentication
// token; no token is accepted, as proxies seldom send one.
func (s *sspiSession) Verify(token []byte) error {
	if len(token) == 0 || s.neg == nil || s.done {
		return nil
	}
	done, _, err := s.neg.Update(token)
	if err != nil || !done {
		return &Error{Kind: KindMutualAuth, SPN: s.plan.TargetName, Detail: "SSPI did not accept the proxy's mutual-authentication token", Err: err}
	}
	s.done = true
	return nil
}

// Close releases the SSPI context and credentials handles.
func (s *sspiSession) Close() error {
	if s.neg != nil {
		s.neg.Release()
		s.neg = nil
	}
	if s.ntlm != nil {
		s.ntlm.Release()
		s.ntlm = nil
	}
	if s.cred != nil {
		s.cred.Release()
		s.cred = nil
	}
	return nil
}
