package httpauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsproxy/wsproxy/internal/httpauth/negotiate"
)

// NegotiateOptions are the root package's NegotiateAuth settings, which
// convert to it (see NegotiateAuth for what each means).
type NegotiateOptions struct {
	SPN              string
	CanonicalizeHost bool
	Principal        string
	Keytab           string
	CCache           string
	Krb5Conf         string
}

// NegotiateEnv is what a dial lends Negotiate: the environment, a trace
// and the Dialer's SPN override. The zero value is the process
// environment and no trace.
type NegotiateEnv struct {
	Getenv func(string) string
	Logf   func(format string, args ...any)
	SPN    string // Dialer.ProxySPN
}

// Tracef writes one trace line, prefixed "auth: ", when there is a trace.
func (e NegotiateEnv) Tracef(format string, args ...any) {
	if e.Logf != nil {
		e.Logf("auth: "+format, args...)
	}
}

// Config is the pure-Go mechanism's configuration for one attempt, with
// creds (nil: a ticket only) as the password for an AS exchange.
func (o NegotiateOptions) Config(env NegotiateEnv, creds *Credentials) *negotiate.Config {
	cfg := &negotiate.Config{
		SPN: o.SPNFor(env), CanonicalizeHost: o.CanonicalizeHost, Username: o.Principal,
		Keytab: o.Keytab, CCache: o.CCache, Krb5Conf: o.Krb5Conf,
		Getenv: env.Getenv,
	}
	if env.Logf != nil {
		cfg.Trace = env.Tracef
	}
	if creds != nil && creds.Username != "" && creds.Password != "" {
		cfg.Username, cfg.Password = creds.Username, creds.Password
	}
	return cfg
}

// PureGo reports whether the pure-Go Kerberos path was asked for
// explicitly (a keytab, cache or configuration file), which on Windows
// replaces SSPI.
func (o NegotiateOptions) PureGo() bool {
	return o.Keytab != "" || o.CCache != "" || o.Krb5Conf != ""
}

// UsesSSPI reports whether Negotiate answers through Windows SSPI.
func (o NegotiateOptions) UsesSSPI() bool { return !o.PureGo() && negotiate.SSPIAvailable }

// SPNFor is the SPN override in force: the scheme's, else the Dialer's;
// "" means the default HTTP/<proxy host>.
func (o NegotiateOptions) SPNFor(env NegotiateEnv) string {
	if o.SPN != "" {
		return o.SPN
	}
	return env.SPN
}

// Start makes the first Negotiate token for the proxy at host, through
// SSPI on Windows, else pure-Go Kerberos, with creds (nil: a ticket only).
func (o NegotiateOptions) Start(ctx context.Context, env NegotiateEnv, host string, creds *Credentials) (*NegotiateSession, error) {
	var x negotiate.Session
	if o.UsesSSPI() {
		var user, pass string
		if creds != nil {
			user, pass = creds.Username, creds.Password
		}
		x, _ = negotiate.SSPIFor(host, o.SPNFor(env), user, pass, env.Tracef)
	}
	if x == nil {
		x = o.Config(env, creds).NewContext(host)
	}
	return StartNegotiate(ctx, x)
}

// Login makes the first token for the proxy at host as a browser would:
// with a ticket (and first, the proxy URL's credentials, when given),
// else with each password next finds (the dial's credential sources, in
// their order), asked only when a password may help. A password the KDC
// refuses goes to refused, so that no scheme sends it again in the dial.
// It returns the session and the credentials that got the ticket (nil
// for a cached ticket or keytab), with their source. When nothing reached
// the proxy and nothing can, the error matches ErrSchemeUnavailable, so
// the 407 loop tries the next offered scheme.
func (o NegotiateOptions) Login(ctx context.Context, env NegotiateEnv, host string, first *Credentials, firstSrc Source,
	next func(context.Context) (*Credentials, Source, error), refused func(Source, *Credentials)) (*NegotiateSession, *Credentials, Source, error) {
	creds, src := first, firstSrc
	for {
		s, err := o.Start(ctx, env, host, creds)
		if err == nil {
			return s, creds, src, nil
		}
		if !negotiate.FallbackAllowed(err) {
			return nil, nil, SourceNone, err
		}
		if creds != nil && errors.Is(err, negotiate.ErrPreauthFailed) {
			refused(src, creds) // never again in this dial, for any scheme
			err = fmt.Errorf("%w: %w", ErrRejected, err)
			env.Tracef("Negotiate: the KDC refused the password of %q from %s", creds.Username, src)
		} else if creds != nil || !negotiate.PasswordMayHelp(err) {
			return nil, nil, SourceNone, Unavailable(err)
		}
		more, msrc, lerr := next(ctx)
		if lerr != nil {
			return nil, nil, SourceNone, lerr
		}
		if more == nil || more.Username == "" || more.Password == "" {
			return nil, nil, SourceNone, Unavailable(err)
		}
		env.Tracef("Negotiate: %v; getting a ticket with the password of %q from %s", negotiate.Brief(err), more.Username, msrc)
		creds, src = more, msrc
	}
}
