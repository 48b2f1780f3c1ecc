package negotiate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/jcmturner/gokrb5/v8/config"
)

// Config says where the Negotiate mechanism takes its Kerberos identity
// from and which service principal it asks a ticket for. The zero Config
// is a browser's behaviour: the user's ticket cache, the system krb5.conf,
// the SPN HTTP/<proxy host as written>.
//
// Credential sources, in order; each step that is skipped says why in
// Trace:
//  1. the ticket cache: CCache, else $KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>.
//     FILE: caches, bare paths and DIR: collections are read; KCM:,
//     KEYRING:, API:, MEMORY: and unknown types give an *Error of
//     KindUnsupportedCache, never a silent fall-through. A cache whose
//     principal is not Username (when set) is skipped.
//  2. a client keytab: Keytab, else $KRB5_CLIENT_KTNAME; its principal is
//     Username, else the keytab's first entry.
//  3. Username and Password: an AS exchange with the KDC.
type Config struct {
	// SPN overrides the service principal, as "HTTP/proxy.example.com" or
	// "HTTP/proxy.example.com@REALM". Default: "HTTP/" + the proxy host as
	// written in the proxy URL, lower-cased.
	SPN string
	// CanonicalizeHost resolves the proxy host's CNAME before forming the
	// SPN, as browsers can (Chrome's "negotiate-disable-cname-lookup"
	// reversed). Default off: DNS answers would choose the principal.
	CanonicalizeHost bool
	// Realm overrides the realm of the proxy's SPN. Default: krb5.conf's
	// [domain_realm] for the host, else the client's realm.
	Realm string

	// Username is the client principal ("alice" or "alice@EXAMPLE.COM")
	// for a keytab or a password. A bare name takes krb5.conf's
	// default_realm.
	Username string
	// Password, with Username, gets a ticket by an AS exchange when no
	// cached ticket is usable. Never logged.
	Password string
	// Keytab is a client keytab file. Default: $KRB5_CLIENT_KTNAME (with or
	// without its "FILE:" prefix).
	Keytab string
	// CCache overrides $KRB5CCNAME, in the same syntax.
	CCache string
	// Krb5Conf is the Kerberos configuration file. Default: $KRB5_CONFIG
	// (its first file when it is a colon-separated list), else
	// /etc/krb5.conf.
	Krb5Conf string

	// Getenv reads the environment. Default os.Getenv; tests replace it.
	Getenv func(string) string
	// LookupCNAME resolves a CNAME when CanonicalizeHost is set. Default
	// net.DefaultResolver.LookupCNAME.
	LookupCNAME func(ctx context.Context, host string) (string, error)
	// Trace receives one line per decision: principal, SPN, cache used,
	// why a source was skipped. It never receives a password, key, ticket
	// or token. Default: no trace.
	Trace func(format string, args ...any)
}

func (c *Config) getenv(k string) string {
	if c.Getenv != nil {
		return c.Getenv(k)
	}
	return os.Getenv(k)
}

func (c *Config) tracef(format string, args ...any) {
	if c.Trace != nil {
		c.Trace("negotiate: "+format, args...)
	}
}

// krb5ConfPath is the configuration file to read.
func (c *Config) krb5ConfPath() string {
	if c.Krb5Conf != "" {
		return c.Krb5Conf
	}
	if v := c.getenv("KRB5_CONFIG"); v != "" {
		first, _, _ := strings.Cut(v, ":")
		if first != "" {
			return first
		}
	}
	return "/etc/krb5.conf"
}

// loadKrb5Conf reads the Kerberos configuration. gokrb5 reports directives
// it does not implement (v4 settings and the like) as an error next to a
// usable configuration; those are traced and ignored.
func (c *Config) loadKrb5Conf() (*config.Config, error) {
	path := c.krb5ConfPath()
	b, err := readCapped(path, 1<<20)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Detail: "cannot read the Kerberos configuration " + path, Err: err,
			Hint: "set KRB5_CONFIG to your krb5.conf"}
	}
	conf, err := parseKrb5Conf(string(b))
	var unsupported config.UnsupportedDirective
	if errors.As(err, &unsupported) && conf != nil {
		c.tracef("krb5.conf %s: ignoring a directive gokrb5 does not implement: %v", path, err)
		err = nil
	}
	if err != nil {
		return nil, &Error{Kind: KindConfig, Detail: "cannot parse the Kerberos configuration " + path, Err: err}
	}
	return conf, nil
}

// parseKrb5Conf parses a krb5.conf text with gokrb5, turning a panic on
// odd input into an error.
func parseKrb5Conf(text string) (conf *config.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			conf, err = nil, fmt.Errorf("malformed configuration")
		}
	}()
	return config.NewFromString(text)
}

// serviceTarget is the proxy's service principal and its realm.
type serviceTarget struct {
	SPN   string // "HTTP/host", without realm
	Realm string // may be empty: the client's realm
}

// target decides the SPN and its realm for proxyHost (a host name or IP
// literal without port).
func (c *Config) target(ctx context.Context, conf *config.Config, proxyHost string) serviceTarget {
	spn, realm := c.SPN, c.Realm
	if spn != "" {
		if name, r, ok := strings.Cut(spn, "@"); ok {
			spn = name
			if realm == "" {
				realm = r
			}
		}
		c.tracef("SPN %s (set explicitly)", spn)
	} else {
		host := proxyHost
		if c.CanonicalizeHost && net.ParseIP(host) == nil {
			host = c.canonicalHost(ctx, strings.ToLower(strings.TrimSuffix(host, ".")))
		}
		spn = defaultSPN(host)
		c.tracef("SPN %s (from the proxy host)", spn)
	}
	if realm == "" {
		realm = realmOfSPN(conf, spn)
	}
	return serviceTarget{SPN: spn, Realm: realm}
}

// realmOfSPN is the realm of the SPN's host by krb5.conf's [domain_realm]
// (the most specific match), or "" when nothing maps it.
func realmOfSPN(conf *config.Config, spn string) string {
	_, host, found := strings.Cut(spn, "/")
	if !found || conf == nil {
		return ""
	}
	host, _, _ = strings.Cut(host, "/")
	return conf.ResolveRealm(strings.ToLower(host))
}

func (c *Config) canonicalHost(ctx context.Context, host string) string {
	lookup := c.LookupCNAME
	if lookup == nil {
		lookup = net.DefaultResolver.LookupCNAME
	}
	cname, err := lookup(ctx, host)
	cname = strings.ToLower(strings.TrimSuffix(cname, "."))
	if err != nil || cname == "" {
		c.tracef("CNAME of %s not resolved (%v); using the name as written", host, err)
		return host
	}
	if cname != host {
		c.tracef("CNAME of %s is %s", host, cname)
	}
	return cname
}

// clientPrincipal splits Username into name and realm; a bare name takes
// defaultRealm.
func clientPrincipal(username, defaultRealm string) (name, realm string) {
	if i := strings.LastIndex(username, "@"); i >= 0 {
		return username[:i], username[i+1:]
	}
	return username, defaultRealm
}
