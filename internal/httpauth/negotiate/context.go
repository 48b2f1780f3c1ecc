package negotiate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// Context is one connection's Negotiate exchange with a proxy: Start makes
// the token for "Proxy-Authorization: Negotiate <token>", Verify checks the
// proxy's optional mutual-authentication answer on the 200. A Context is
// used by one goroutine at a time and holds no network resources.
type Context struct {
	cfg  Config
	host string
	spn  string
	init *initToken
}

// NewContext starts a Negotiate exchange with the proxy at proxyHost (the
// host of the proxy URL, without port, as written). The Config is copied:
// later changes to c do not affect the Context.
func (c *Config) NewContext(proxyHost string) *Context {
	cp := Config{}
	if c != nil {
		cp = *c
	}
	return &Context{cfg: cp, host: proxyHost}
}

// SPN returns the service principal the ticket is for, once Start has
// decided it (before: "").
func (x *Context) SPN() string { return x.spn }

// Start obtains a service ticket for the proxy's SPN from the first
// credential source that works (see Config) and returns the SPNEGO
// NegTokenInit carrying the AP-REQ, to be sent base64-encoded as
// "Proxy-Authorization: Negotiate <token>". Each call makes a fresh token
// (a new authenticator): call it again for a new connection.
//
// Errors are *Error values; FallbackAllowed(err) tells whether no ticket
// could be had (the proxy saw nothing). ctx is checked between steps; one
// exchange with a KDC is bounded by gokrb5's own timeouts (5 s per KDC).
func (x *Context) Start(ctx context.Context) (token []byte, err error) {
	c := &x.cfg
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conf, err := c.configOrDefault()
	if err != nil {
		return nil, err
	}
	t := c.target(ctx, conf, x.host)
	x.spn = t.SPN
	if t.Realm != "" {
		_, host, _ := strings.Cut(t.SPN, "/")
		conf.DomainRealm[strings.ToLower(host)] = t.Realm // so gokrb5 asks this realm's KDC
	}
	cl, err := c.acquire(conf, t)
	if err != nil {
		return nil, err
	}
	defer cl.Destroy() // stops gokrb5's renewal goroutines
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	principal := cl.Credentials.CName().PrincipalNameString() + "@" + cl.Credentials.Realm()
	if _, _, cached := cl.GetCachedTicket(t.SPN); cached {
		c.tracef("service ticket for %s taken from the ticket cache", t.SPN)
	}
	tkt, key, err := cl.GetServiceTicket(t.SPN)
	if err != nil {
		e := kdcError(err, principal, t.Realm, "getting a ticket for "+t.SPN)
		e.SPN = t.SPN
		if e.Kind == KindUnknownService {
			e.Detail = fmt.Sprintf("the KDC does not know the proxy's service principal %s", t.SPN)
			e.Hint = "set the SPN explicitly if the proxy is known under another name"
		}
		return nil, e
	}
	it, err := newInitToken(cl, tkt, key)
	if err != nil {
		return nil, &Error{Kind: KindKDCError, Principal: principal, SPN: t.SPN, Detail: "cannot build the Negotiate token", Err: err}
	}
	x.init = &it
	c.tracef("ticket for %s obtained as %s; sending a Negotiate token (mutual authentication requested)", t.SPN, principal)
	return it.Token, nil
}

// configOrDefault loads krb5.conf; without one, it does what MIT does with
// no file: find KDCs through DNS SRV records.
func (c *Config) configOrDefault() (*config.Config, error) {
	conf, err := c.loadKrb5Conf()
	var e *Error
	if errors.As(err, &e) && errors.Is(e.Err, fs.ErrNotExist) && c.Krb5Conf == "" {
		c.tracef("no Kerberos configuration at %s; finding KDCs through DNS SRV records", c.krb5ConfPath())
		conf = config.New()
		conf.LibDefaults.DNSLookupKDC = true
		return conf, nil
	}
	if conf != nil && conf.DomainRealm == nil {
		conf.DomainRealm = config.DomainRealm{}
	}
	return conf, err
}

// Verify checks the token of a "Proxy-Authenticate: Negotiate <token>" on
// the proxy's 200 (already base64-decoded). A mutual-authentication AP-REP
// must have been made with this connection's session key; an empty token
// (no header) is fine, as most proxies send none. A rejecting NegTokenResp
// or a Kerberos error gives KindRejected; a token that does not verify
// gives KindMutualAuth.
func (x *Context) Verify(token []byte) error {
	if len(token) == 0 {
		x.cfg.tracef("no mutual-authentication token from the proxy; accepted")
		return nil
	}
	if x.init == nil {
		return &Error{Kind: KindMutualAuth, SPN: x.spn, Detail: "a Negotiate answer arrived before any token was sent"}
	}
	a, err := parseAnswer(token)
	if err != nil {
		return &Error{Kind: KindMutualAuth, SPN: x.spn, Detail: "the proxy's Negotiate answer is malformed", Err: err}
	}
	switch {
	case a.KRBError != nil:
		e := RejectedError(x.spn).(*Error)
		e.Detail += fmt.Sprintf(" (Kerberos error %d)", a.KRBError.ErrorCode)
		return e
	case a.State == spnego.NegStateReject:
		return RejectedError(x.spn)
	case a.APRep != nil:
		if err := verifyAPRep(a.APRep, *x.init); err != nil {
			return &Error{Kind: KindMutualAuth, SPN: x.spn, Detail: "the proxy's mutual-authentication answer for " + x.spn + " is not valid", Err: err}
		}
		x.cfg.tracef("mutual authentication of %s verified", x.spn)
		return nil
	case a.State == spnego.NegStateAcceptCompleted:
		x.cfg.tracef("proxy accepted without a mutual-authentication reply")
		return nil
	}
	return &Error{Kind: KindMutualAuth, SPN: x.spn, Detail: fmt.Sprintf("the proxy's Negotiate answer has state %d and no reply", a.State)}
}

// Rejected is the error for a 407 that answers this Context's token: see
// RejectedError. Retrying with the same credentials would only loop.
func (x *Context) Rejected() error { return RejectedError(x.spn) }

// Describe says, without asking any KDC, which SPN and credentials a
// Context for proxyHost would use: for "wsdial -show-proxy" and "-v". It
// never includes a password or key, only whether one is set.
func (c *Config) Describe(ctx context.Context, proxyHost string) string {
	cp := *c
	cp.Trace = nil
	var b strings.Builder
	conf, err := cp.configOrDefault()
	if err != nil {
		return "Negotiate: " + err.Error()
	}
	t := cp.target(ctx, conf, proxyHost)
	realm := t.Realm
	if realm == "" {
		realm = "the client's"
	}
	fmt.Fprintf(&b, "Negotiate: SPN %s, realm %s, krb5.conf %s", t.SPN, realm, cp.krb5ConfPath())
	name, _ := cp.ccacheName()
	if ct, err := cp.findCachedTGT(conf, t); err == nil {
		fmt.Fprintf(&b, "; ticket cache %s of %s, valid until %s", name, ct.principal, ct.tgt.EndTime.Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, "; ticket cache %s unusable: %v", name, err)
	}
	if kt := cp.keytabPath(); kt != "" {
		fmt.Fprintf(&b, "; client keytab %s", kt)
	}
	if cp.Username != "" && cp.Password != "" {
		fmt.Fprintf(&b, "; password of %s", cp.Username)
	}
	return b.String()
}
