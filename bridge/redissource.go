package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ParseRedisSource parses a --token-source for TokenRedis. Two forms:
//
// websockify's, "host[:port[:db[:password[:namespace]]]]": an empty host
// means localhost, an empty port 6379, an empty db 0; a field wrapped in
// double quotes may hold colons (`h:6379:0:"pa:ss"`); the host may be an
// IPv6 address in brackets.
//
// URLs, for TLS, Sentinel and Cluster:
//
//	redis://[[user]:password@]host[:port][/db][?options]
//	rediss://...                                   the same over TLS
//	redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db][?options]
//	redis+cluster://[[user]:password@]host[:port][,host[:port]...][?options]
//
// and rediss+sentinel://, rediss+cluster:// over TLS. The default port
// is 6379, for Sentinels 26379. A Sentinel URL lists the Sentinels and
// names the master they are asked for; user and password are the
// master's. The user and password are percent-decoded. Options:
// namespace=NS (keys are "NS:token"), timeout=DURATION (a Go duration or
// seconds; default DefaultRedisTimeout), sentinel_username= and
// sentinel_password= (for Sentinels that require AUTH), and over TLS
// ca_file=PEM (trusted CAs instead of the system's), cert_file= and
// key_file= (a client certificate), server_name= (the name checked in
// the server's certificate; default the host).
//
// Errors name the part that is wrong and never repeat the password.
func ParseRedisSource(src string) (*RedisTokens, error) {
	if scheme, rest, ok := strings.Cut(src, "://"); ok {
		return parseRedisURL(scheme, rest)
	}
	return parseWebsockifyRedisSource(src)
}

func parseWebsockifyRedisSource(src string) (*RedisTokens, error) {
	host, rest := "", src
	bracketed := strings.HasPrefix(src, "[")
	if bracketed {
		i := strings.IndexByte(src, ']')
		if i < 0 {
			return nil, errors.New("bridge: redis source: missing ] after the IPv6 address")
		}
		host, rest = src[1:i], src[i+1:]
		if rest != "" && rest[0] != ':' {
			return nil, errors.New("bridge: redis source: want : after ]")
		}
		rest = strings.TrimPrefix(rest, ":")
	}
	fields := splitSourceFields(rest)
	if !bracketed {
		host, fields = fields[0], fields[1:]
	}
	if len(fields) > 4 {
		return nil, errors.New("bridge: redis source: too many fields (want host[:port[:db[:password[:namespace]]]])")
	}
	fields = append(fields, make([]string, 4-len(fields))...)
	portS, dbS, password, namespace := fields[0], fields[1], fields[2], fields[3]
	if host == "" {
		host = "localhost"
	}
	if !validRedisHost(host) {
		return nil, errors.New("bridge: redis source: bad host")
	}
	if portS == "" {
		portS = "6379"
	}
	if err := checkPort(portS); err != nil {
		return nil, err
	}
	r := &RedisTokens{Addr: net.JoinHostPort(host, portS), Password: password, Namespace: namespace}
	if dbS != "" {
		db, err := parseRedisDB(dbS)
		if err != nil {
			return nil, err
		}
		r.DB = db
	}
	return r, nil
}

// splitSourceFields splits at colons, as websockify's parse_source_args:
// a field that starts with a double quote and has its closing quote right
// before a colon or the end is taken without the quotes and may hold
// colons. It returns at least one field.
func splitSourceFields(s string) []string {
	var fields []string
	for {
		if strings.HasPrefix(s, `"`) {
			if i := quotedFieldEnd(s); i > 0 {
				fields = append(fields, s[1:i])
				if i+1 == len(s) {
					return fields
				}
				s = s[i+2:]
				continue
			}
		}
		field, rest, more := strings.Cut(s, ":")
		fields = append(fields, field)
		if !more {
			return fields
		}
		s = rest
	}
}

// quotedFieldEnd returns the index of the quote closing s's first field,
// or -1: a quote followed by a colon or the end, with no quote between.
func quotedFieldEnd(s string) int {
	i := strings.IndexByte(s[1:], '"')
	if i < 1 { // no closing quote, or an empty ""
		return -1
	}
	i++
	if i+1 == len(s) || s[i+1] == ':' {
		return i
	}
	return -1
}

// validRedisHost accepts a host name or an IP address (an IPv6 one
// without its brackets).
func validRedisHost(host string) bool {
	if strings.Contains(host, ":") {
		_, err := netip.ParseAddr(host)
		return err == nil
	}
	if host == "" {
		return false
	}
	for _, c := range []byte(host) {
		if c <= ' ' || c == 0x7f || strings.IndexByte("[]@/?#\\,\"", c) >= 0 {
			return false
		}
	}
	return true
}

func checkPort(p string) error {
	if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("bridge: redis source: bad port %q", p)
	}
	return nil
}

func parseRedisDB(s string) (int, error) {
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 {
		return 0, fmt.Errorf("bridge: redis source: bad database %q", s)
	}
	return db, nil
}

func parseRedisURL(scheme, rest string) (*RedisTokens, error) {
	r := &RedisTokens{}
	defaultPort := "6379"
	switch scheme {
	case "redis", "rediss":
	case "redis+sentinel", "rediss+sentinel":
		defaultPort = "26379"
	case "redis+cluster", "rediss+cluster":
		r.Cluster = true
	default:
		return nil, fmt.Errorf("bridge: redis source: unknown scheme %q (want redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster)", scheme)
	}
	tlsOn := strings.HasPrefix(scheme, "rediss")
	authority, pathQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if err := r.setUserinfo(authority[:i]); err != nil {
			return nil, err
		}
		authority = authority[i+1:]
	}
	hosts, err := parseRedisHosts(authority, defaultPort)
	if err != nil {
		return nil, err
	}
	r.Addr, r.Addrs = hosts[0], hosts
	if scheme == "redis" || scheme == "rediss" {
		if len(hosts) > 1 {
			return nil, errors.New("bridge: redis source: several hosts need redis+sentinel:// or redis+cluster://")
		}
		r.Addrs = nil
	}
	path, query, _ := strings.Cut(pathQuery, "?")
	if err := r.setPath(scheme, strings.TrimPrefix(path, "/")); err != nil {
		return nil, err
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return nil, errors.New("bridge: redis source: bad options after ?")
	}
	if err := r.setOptions(values, tlsOn); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RedisTokens) setUserinfo(userinfo string) error {
	user, password, hasPassword := strings.Cut(userinfo, ":")
	var err error
	if r.Username, err = url.PathUnescape(user); err != nil {
		return errors.New("bridge: redis source: bad percent-encoding in the user name")
	}
	if hasPassword {
		if r.Password, err = url.PathUnescape(password); err != nil {
			return errors.New("bridge: redis source: bad percent-encoding in the password")
		}
	}
	return nil
}

// parseRedisHosts splits "h1[:p1],h2[:p2]" (IPv6 hosts in brackets).
func parseRedisHosts(authority, defaultPort string) ([]string, error) {
	var hosts []string
	for h := range strings.SplitSeq(authority, ",") {
		host, port := h, defaultPort
		if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
			var err error
			if host, port, err = net.SplitHostPort(h); err != nil {
				if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
					host, port = h[1:len(h)-1], defaultPort
				} else {
					return nil, fmt.Errorf("bridge: redis source: bad host %q", h)
				}
			}
		}
		if !validRedisHost(host) {
			return nil, fmt.Errorf("bridge: redis source: bad host %q", h)
		}
		if port == "" {
			port = defaultPort
		}
		if err := checkPort(port); err != nil {
			return nil, err
		}
		hosts = append(hosts, net.JoinHostPort(host, port))
	}
	return hosts, nil
}

// setPath reads "/db" (redis), "/master[/db]" (sentinel); clusters have
// no path.
func (r *RedisTokens) setPath(scheme, path string) error {
	switch {
	case strings.HasSuffix(scheme, "+sentinel"):
		master, db, hasDB := strings.Cut(path, "/")
		if master == "" {
			return errors.New("bridge: redis source: a Sentinel URL needs the master's name as its path")
		}
		r.SentinelMaster = master
		if !hasDB || db == "" {
			return nil
		}
		path = db
	case r.Cluster:
		if path != "" {
			return errors.New("bridge: redis source: a Cluster has no database (no path after the hosts)")
		}
		return nil
	}
	if path == "" {
		return nil
	}
	db, err := parseRedisDB(path)
	r.DB = db
	return err
}

func (r *RedisTokens) setOptions(values url.Values, tlsOn bool) error {
	var caFile, certFile, keyFile, serverName string
	for name, vs := range values {
		v := vs[len(vs)-1]
		switch name {
		case "namespace":
			r.Namespace = v
		case "timeout":
			d, err := parseSecondsOrDuration(v)
			if err != nil {
				return fmt.Errorf("bridge: redis source: bad timeout %q", v)
			}
			r.Timeout = d
		case "sentinel_username":
			r.SentinelUsername = v
		case "sentinel_password":
			r.SentinelPassword = v
		case "ca_file":
			caFile = v
		case "cert_file":
			certFile = v
		case "key_file":
			keyFile = v
		case "server_name":
			serverName = v
		default:
			return fmt.Errorf("bridge: redis source: unknown option %q", name)
		}
	}
	if !tlsOn {
		if caFile != "" || certFile != "" || keyFile != "" || serverName != "" {
			return errors.New("bridge: redis source: TLS options need a rediss scheme")
		}
		return nil
	}
	cfg, err := redisTLSConfig(caFile, certFile, keyFile, serverName)
	r.TLS = cfg
	return err
}

func parseSecondsOrDuration(v string) (time.Duration, error) {
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 1e6 {
			return 0, errors.New("out of range")
		}
		return time.Duration(s * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("out of range")
	}
	return d, err
}

func redisTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: redis source: ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bridge: redis source: ca_file %s holds no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("bridge: redis source: cert_file and key_file go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: redis source: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
