// Package negotiate is the mechanism behind "Proxy-Authenticate: Negotiate"
// (RFC 4559): SPNEGO with Kerberos, the single sign-on of Active Directory
// proxies.
//
// Everywhere, in pure Go through github.com/jcmturner/gokrb5/v8: a Config
// says where the user's Kerberos identity comes from (the ticket cache left
// by kinit, a client keytab, or a user name and password turned into a
// ticket by an AS exchange) and which service principal the proxy has
// (HTTP/<proxy host>, or an override). On Windows, NewSSPISession answers
// Negotiate and NTLM with the logon session's credentials through SSPI.
//
// # Use from the 407 loop
//
// Both implementations are a Session:
//
//	x := cfg.NewContext(proxyHost)   // or NewSSPISession(plan, trace) on Windows
//	defer x.Close()
//	tok, err := x.Start(ctx)         // FallbackAllowed(err): try the next offered scheme
//	// send "Proxy-Authorization: Negotiate " + EncodeToken(tok)
//	// 407 again: tok, err = x.Next(DecodeToken(param)); for Kerberos err is ErrRejected: stop
//	// 200: err = x.Verify(DecodeToken(param of its Proxy-Authenticate: Negotiate, if any))
//
// A Context makes a fresh token (a new authenticator) on each Start, so a
// new connection after a closing 407 uses a new Context.
//
// # Errors
//
// Every failure is an *Error whose Kind has a sentinel for errors.Is. The
// kinds split in two classes: "no ticket could be had" (ErrNoTicketObtained:
// no cache, expired ticket, unsupported cache type, KDC unreachable, wrong
// password, unknown principal or SPN, configuration) where nothing reached
// the proxy and a browser falls back to NTLM, Digest or Basic; and "the
// proxy refused" (ErrRejected, ErrMutualAuth) which must end the attempt.
// No error or trace line holds a password, key, ticket or token.
//
// # Limits
//
// The pure-Go path reads FILE: and DIR: caches (MIT format 3 and 4) and
// keytabs; KCM:, KEYRING: and API: caches are refused with an error saying
// to kinit into a FILE: cache. gokrb5 has no FAST armoring, and a KDC
// exchange is bounded by its own timeouts (5 s per KDC), not by ctx.
package negotiate
