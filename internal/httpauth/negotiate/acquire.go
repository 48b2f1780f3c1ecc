package negotiate

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/krberror"
)

// acquire returns a Kerberos client holding a ticket-granting ticket for
// the first credential source that works, in Config's order. Each skipped
// source is traced. When none works, the error of the most telling source
// is returned: an explicit keytab or password failure, else the cache's.
func (c *Config) acquire(conf *config.Config, t serviceTarget) (*client.Client, error) {
	cl, cacheErr := c.fromCCache(conf, t)
	if cacheErr == nil {
		return cl, nil
	}
	c.tracef("ticket cache skipped: %v", cacheErr)
	if path := c.keytabPath(); path != "" {
		cl, err := c.fromKeytab(conf, t, path)
		if err == nil {
			return cl, nil
		}
		if c.Password == "" {
			return nil, err
		}
		c.tracef("keytab skipped: %v", err)
	}
	if c.Username != "" && c.Password != "" {
		return c.fromPassword(conf, t)
	}
	c.tracef("no keytab and no password to get a ticket with")
	return nil, cacheErr
}

// ccacheName is the cache to read: Config.CCache, $KRB5CCNAME, MIT's default.
func (c *Config) ccacheName() (name string, isDefault bool) {
	if c.CCache != "" {
		return c.CCache, false
	}
	if v := c.getenv("KRB5CCNAME"); v != "" {
		return v, false
	}
	return defaultCCacheName(), true
}

// cachedTGT is a usable ticket-granting ticket found in the ticket cache.
type cachedTGT struct {
	cache     *credentials.CCache
	tgt       *credentials.Credential
	path      string
	principal string // alice@REALM
}

func (c *Config) fromCCache(conf *config.Config, t serviceTarget) (*client.Client, error) {
	ct, err := c.findCachedTGT(conf, t)
	if err != nil {
		return nil, err
	}
	cl, err := client.NewFromCCache(ct.cache, conf, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, &Error{Kind: KindBadCache, Realm: t.Realm, Principal: ct.principal,
			Detail: "cannot use the Kerberos ticket cache " + ct.path, Err: err}
	}
	c.tracef("ticket cache FILE:%s: principal %s, ticket valid until %s", ct.path, ct.principal, ct.tgt.EndTime.Format(time.RFC3339))
	return cl, nil
}

// findCachedTGT reads the ticket cache and returns its unexpired TGT,
// without asking any KDC.
func (c *Config) findCachedTGT(conf *config.Config, t serviceTarget) (cachedTGT, error) {
	name, isDefault := c.ccacheName()
	loc, err := parseCCacheName(name)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Realm = t.Realm
		}
		return cachedTGT{}, err
	}
	path, err := resolveCCachePath(loc)
	if err == nil {
		var b []byte
		if b, err = readCapped(path, maxCCacheSize); err == nil {
			return c.tgtFromCCacheBytes(conf, t, path, b)
		}
	}
	e := &Error{Kind: KindBadCache, Realm: t.Realm, Detail: "cannot read the Kerberos ticket cache " + name, Err: err}
	if errors.Is(err, fs.ErrNotExist) {
		e = &Error{Kind: KindNoTicket, Realm: t.Realm, Detail: noTicketDetail(t.Realm, "no ticket cache at "+path),
			Hint: "run kinit"}
		if isDefault && runtime.GOOS == "darwin" {
			e.Hint = "run kinit -c FILE:/tmp/krb5cc_$(id -u): macOS keeps its default cache in API:, which pure-Go Kerberos cannot read"
		}
	}
	return cachedTGT{}, e
}

func noTicketDetail(realm, why string) string {
	if realm == "" {
		return "no Kerberos ticket (" + why + ")"
	}
	return "no Kerberos ticket for the proxy's realm " + realm + " (" + why + ")"
}

func (c *Config) tgtFromCCacheBytes(conf *config.Config, t serviceTarget, path string, b []byte) (cachedTGT, error) {
	cache, err := parseCCache(b)
	if err != nil {
		return cachedTGT{}, &Error{Kind: KindBadCache, Realm: t.Realm, Detail: "cannot parse the Kerberos ticket cache " + path, Err: err}
	}
	cache.Path = path
	realm := cache.DefaultPrincipal.Realm
	principal := cache.DefaultPrincipal.PrincipalName.PrincipalNameString() + "@" + realm
	if c.Username != "" {
		name, urealm := clientPrincipal(c.Username, conf.LibDefaults.DefaultRealm)
		if want := name + "@" + urealm; want != principal && !(urealm == "" && name+"@"+realm == principal) {
			return cachedTGT{}, &Error{Kind: KindNoTicket, Realm: t.Realm, Principal: principal,
				Detail: fmt.Sprintf("the ticket cache %s holds %s, not %s", path, principal, want)}
		}
	}
	tgt, ok := findTGT(cache, realm)
	if !ok {
		return cachedTGT{}, &Error{Kind: KindNoTicket, Realm: t.Realm, Principal: principal,
			Detail: noTicketDetail(t.Realm, "the cache "+path+" of "+principal+" has no ticket-granting ticket"),
			Hint:   "run kinit"}
	}
	if !time.Now().Before(tgt.EndTime) {
		return cachedTGT{}, &Error{Kind: KindTicketExpired, Realm: realm, Principal: principal,
			Detail: fmt.Sprintf("the Kerberos ticket of %s in %s expired at %s", principal, path, tgt.EndTime.Format(time.RFC3339)),
			Hint:   "run kinit"}
	}
	return cachedTGT{cache: cache, tgt: tgt, path: path, principal: principal}, nil
}

// keytabPath is Config.Keytab or $KRB5_CLIENT_KTNAME, without "FILE:".
func (c *Config) keytabPath() string {
	p := c.Keytab
	if p == "" {
		p = c.getenv("KRB5_CLIENT_KTNAME")
	}
	if rest, ok := strings.CutPrefix(p, "FILE:"); ok {
		return rest
	}
	return p
}

func (c *Config) fromKeytab(conf *config.Config, t serviceTarget, path string) (*client.Client, error) {
	b, err := readCapped(path, maxCCacheSize)
	if err != nil {
		return nil, &Error{Kind: KindBadCache, Realm: t.Realm, Detail: "cannot read the client keytab " + path, Err: err}
	}
	kt, err := parseKeytab(b)
	if err != nil {
		// gokrb5's parse errors can quote the file's bytes: keys. Say only that it failed.
		return nil, &Error{Kind: KindBadCache, Realm: t.Realm, Detail: "the client keytab " + path + " is not a valid keytab"}
	}
	name, realm := clientPrincipal(c.Username, conf.LibDefaults.DefaultRealm)
	if c.Username == "" {
		if len(kt.Entries) == 0 {
			return nil, &Error{Kind: KindNoTicket, Realm: t.Realm, Detail: "the client keytab " + path + " has no entries"}
		}
		p := kt.Entries[0].Principal
		name, realm = strings.Join(p.Components, "/"), p.Realm
	}
	if realm == "" {
		realm = t.Realm
	}
	c.tracef("client keytab %s: principal %s@%s", path, name, realm)
	cl := client.NewWithKeytab(name, realm, kt, conf, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		cl.Destroy()
		return nil, kdcError(err, name+"@"+realm, realm, "getting a ticket with the keytab "+path)
	}
	return cl, nil
}

// parseKeytab parses keytab bytes with gokrb5, turning a panic into an error.
func parseKeytab(b []byte) (kt *keytab.Keytab, err error) {
	defer func() {
		if r := recover(); r != nil {
			kt, err = nil, errors.New("malformed keytab")
		}
	}()
	kt = keytab.New()
	return kt, kt.Unmarshal(b)
}

func (c *Config) fromPassword(conf *config.Config, t serviceTarget) (*client.Client, error) {
	name, realm := clientPrincipal(c.Username, conf.LibDefaults.DefaultRealm)
	if realm == "" {
		realm = t.Realm
	}
	if realm == "" {
		return nil, &Error{Kind: KindConfig, Principal: name, Detail: "no realm for user " + name,
			Hint: "write the user as name@REALM or set default_realm in krb5.conf"}
	}
	c.tracef("password of %s@%s: AS exchange with the KDC", name, realm)
	cl := client.NewWithPassword(name, realm, c.Password, conf, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		cl.Destroy()
		return nil, kdcError(err, name+"@"+realm, realm, "getting a ticket with the password")
	}
	return cl, nil
}

// kerberosCode finds the protocol error name in gokrb5's flattened text.
var kerberosCode = regexp.MustCompile(`\b(KDC_ERR|KRB_AP_ERR|KRB_ERR)_[A-Z_]+`)

// kdcError classifies a gokrb5 failure. gokrb5 flattens errors into text
// (krberror.Krberror), so the Kerberos error name and its root cause are
// read from it. Only that name and the step are kept: gokrb5's text is not
// repeated.
func kdcError(err error, principal, realm, step string) *Error {
	e := &Error{Kind: KindKDCError, Principal: principal, Realm: realm}
	code := kerberosCode.FindString(err.Error())
	var kerr krberror.Krberror
	isKrb := errors.As(err, &kerr)
	switch {
	case code == "KDC_ERR_PREAUTH_FAILED" || code == "KRB_AP_ERR_BAD_INTEGRITY" ||
		strings.Contains(err.Error(), "password/keytab incorrect"):
		e.Kind, e.Detail = KindPreauthFailed, fmt.Sprintf("the KDC refused the password or key of %s", principal)
		e.Hint = "check the password, or the keytab's key version"
	case code == "KDC_ERR_C_PRINCIPAL_UNKNOWN":
		e.Kind, e.Detail = KindUnknownPrincipal, fmt.Sprintf("the KDC of %s does not know %s", realm, principal)
	case code == "KDC_ERR_S_PRINCIPAL_UNKNOWN":
		e.Kind, e.Detail = KindUnknownService, fmt.Sprintf("the KDC of %s does not know the service principal", realm)
	case code == "KRB_AP_ERR_TKT_EXPIRED":
		e.Kind, e.Detail, e.Hint = KindTicketExpired, "the Kerberos ticket of "+principal+" expired", "run kinit"
	case code == "":
		if strings.Contains(err.Error(), "no KDCs defined") || strings.Contains(err.Error(), "does not have any defined KDCs") {
			e.Kind, e.Detail = KindConfig, "no KDC is configured for the realm "+realm
			e.Hint = "add it under [realms] in krb5.conf, or set dns_lookup_kdc = true"
		} else if isKrb && kerr.RootCause == krberror.NetworkingError || strings.Contains(err.Error(), "communicat") {
			e.Kind, e.Detail = KindKDCUnreachable, "no KDC of the realm "+realm+" answered"
			e.Hint = "check the network and krb5.conf's [realms] kdc entries"
		}
	}
	if e.Detail == "" {
		e.Detail = step + " failed"
		if code != "" {
			e.Detail += ": the KDC answered " + code
		}
	}
	return e
}
