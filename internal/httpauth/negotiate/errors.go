package negotiate

import (
	"errors"
	"fmt"
	"strings"
)

// Kind says what went wrong in a Negotiate attempt. Kinds up to
// KindUnknownService mean no ticket could be had (see ErrNoTicketObtained);
// the others mean a ticket was sent and the exchange still failed.
type Kind int

// The kinds of failure, each with its sentinel for errors.Is.
const (
	KindNoTicket         Kind = iota + 1 // no cache, or no ticket-granting ticket in it, and nothing to get one with
	KindTicketExpired                    // the cached ticket-granting ticket has expired
	KindUnsupportedCache                 // KRB5CCNAME names a cache type this pure-Go code cannot read
	KindBadCache                         // the cache or keytab file could not be read or parsed
	KindConfig                           // krb5.conf missing or unusable, or no realm/KDC known
	KindKDCUnreachable                   // no KDC answered
	KindPreauthFailed                    // the KDC refused the password or keytab key
	KindUnknownPrincipal                 // the KDC does not know the client principal
	KindUnknownService                   // the KDC does not know the proxy's SPN
	KindKDCError                         // any other refusal by the KDC
	KindRejected                         // the proxy answered the ticket with another 407
	KindMutualAuth                       // the proxy's mutual-authentication token did not verify
)

// Sentinels: errors.Is(err, ErrTicketExpired) and so on match an *Error
// of that kind.
var (
	ErrNoTicket         = errors.New("negotiate: no Kerberos ticket")
	ErrTicketExpired    = errors.New("negotiate: Kerberos ticket expired")
	ErrUnsupportedCache = errors.New("negotiate: unsupported Kerberos credential cache type")
	ErrBadCache         = errors.New("negotiate: unreadable Kerberos credential cache or keytab")
	ErrConfig           = errors.New("negotiate: unusable Kerberos configuration")
	ErrKDCUnreachable   = errors.New("negotiate: Kerberos KDC unreachable")
	ErrPreauthFailed    = errors.New("negotiate: Kerberos pre-authentication failed (wrong password or key)")
	ErrUnknownPrincipal = errors.New("negotiate: Kerberos principal unknown to the KDC")
	ErrUnknownService   = errors.New("negotiate: proxy's service principal unknown to the KDC")
	ErrKDCError         = errors.New("negotiate: Kerberos KDC refused the request")
	ErrRejected         = errors.New("negotiate: proxy rejected the Kerberos ticket")
	ErrMutualAuth       = errors.New("negotiate: proxy's Kerberos mutual authentication failed")

	// ErrNoTicketObtained matches every error of the "could not get a
	// ticket" class (KindNoTicket through KindUnknownService and
	// KindKDCError): nothing was sent to the proxy, so a browser-like
	// client may fall back to the next scheme the proxy offered (NTLM,
	// then Digest or Basic). ErrRejected and ErrMutualAuth are not in it.
	ErrNoTicketObtained = errors.New("negotiate: no Kerberos ticket could be obtained")
)

var kindSentinels = map[Kind]error{
	KindNoTicket: ErrNoTicket, KindTicketExpired: ErrTicketExpired, KindUnsupportedCache: ErrUnsupportedCache,
	KindBadCache: ErrBadCache, KindConfig: ErrConfig, KindKDCUnreachable: ErrKDCUnreachable,
	KindPreauthFailed: ErrPreauthFailed, KindUnknownPrincipal: ErrUnknownPrincipal,
	KindUnknownService: ErrUnknownService, KindKDCError: ErrKDCError, KindRejected: ErrRejected,
	KindMutualAuth: ErrMutualAuth,
}

// Error is a failed Negotiate step. Its text says what happened and what to
// do; it never holds a password, key, ticket or token.
type Error struct {
	Kind      Kind
	Realm     string // the realm concerned, when known
	Principal string // the client principal, when known (alice@EXAMPLE.COM)
	SPN       string // the proxy's service principal, when known
	Detail    string // what happened, in words
	Hint      string // what to do about it, when there is something to do
	Err       error  // the underlying error, when there is one
}

func (e *Error) Error() string {
	s := "negotiate: " + e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's kind and, for the "could not get a ticket"
// kinds, ErrNoTicketObtained.
func (e *Error) Is(target error) bool {
	if target == ErrNoTicketObtained {
		return e.Kind.noTicketObtained()
	}
	return kindSentinels[e.Kind] == target
}

func (k Kind) noTicketObtained() bool {
	return k >= KindNoTicket && k <= KindKDCError
}

// FallbackAllowed reports whether err means that no ticket could be had, so
// that nothing reached the proxy and the next offered scheme may be tried.
// A rejected ticket or a failed mutual authentication returns false: the
// proxy saw a Kerberos attempt and must not be asked again in a loop.
func FallbackAllowed(err error) bool { return errors.Is(err, ErrNoTicketObtained) }

// RejectedError is the error to report when the proxy answers a Negotiate
// token with another 407: the ticket was for spn, which is most often the
// thing to check.
func RejectedError(spn string) error {
	return &Error{
		Kind:   KindRejected,
		SPN:    spn,
		Detail: "the proxy rejected the Kerberos ticket for " + spn,
		Hint:   fmt.Sprintf("is the SPN %s right? set it explicitly if the proxy's name differs from its service principal", spn),
	}
}

// PasswordMayHelp reports whether a failure to get a ticket without a
// password is one a password fixes: no usable ticket cache. A missing KDC
// or configuration stays missing.
func PasswordMayHelp(err error) bool {
	for _, e := range []error{ErrNoTicket, ErrTicketExpired, ErrUnsupportedCache, ErrBadCache} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Brief is an error's text without its hint, for a trace line.
func Brief(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return strings.TrimPrefix(e.Detail, "negotiate: ")
	}
	return err.Error()
}
