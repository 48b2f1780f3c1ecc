package negotiate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/types"
)

// maxCCacheSize bounds how much of a credential cache file is read. MIT
// caches hold one or two kilobytes per ticket; 4 MiB is thousands.
const maxCCacheSize = 4 << 20

// ccacheLocation is a parsed KRB5CCNAME.
type ccacheLocation struct {
	Type string // "FILE" or "DIR" (readable), or the unsupported type's name
	Path string // the file (FILE, DIR::file) or the collection directory (DIR:dir)
}

// unreadableCacheTypes are the cache types that are not files, with where
// their tickets live.
var unreadableCacheTypes = map[string]string{
	"KCM":     "kept by the KCM daemon (sssd-kcm or Heimdal's kcm)",
	"KEYRING": "kept in the kernel keyring",
	"API":     "kept by the macOS credential cache service",
	"MEMORY":  "in another process's memory",
	"MSLSA":   "kept by Windows LSA",
}

// parseCCacheName parses a KRB5CCNAME value: "FILE:path", a bare path,
// "DIR:dir" (the collection's primary cache), "DIR::path" (one cache of a
// collection), or another type, which gives an *Error of
// KindUnsupportedCache. An empty value is an error; the caller supplies
// the default first.
func parseCCacheName(name string) (ccacheLocation, error) {
	if name == "" {
		return ccacheLocation{}, &Error{Kind: KindBadCache, Detail: "empty credential cache name"}
	}
	typ, rest, found := strings.Cut(name, ":")
	if !found || isWindowsDrive(name) || strings.ContainsAny(typ, `/\`) {
		return ccacheLocation{Type: "FILE", Path: name}, nil
	}
	switch upper := strings.ToUpper(typ); upper {
	case "FILE":
		if rest == "" {
			return ccacheLocation{}, &Error{Kind: KindBadCache, Detail: "credential cache name FILE: has no path"}
		}
		return ccacheLocation{Type: "FILE", Path: rest}, nil
	case "DIR":
		if p, ok := strings.CutPrefix(rest, ":"); ok && p != "" {
			return ccacheLocation{Type: "FILE", Path: p}, nil
		}
		if rest == "" || rest == ":" {
			return ccacheLocation{}, &Error{Kind: KindBadCache, Detail: "credential cache name DIR: has no directory"}
		}
		return ccacheLocation{Type: "DIR", Path: rest}, nil
	default:
		where, known := unreadableCacheTypes[upper]
		if !known {
			where = "of a type this program does not know"
		}
		return ccacheLocation{Type: upper}, &Error{
			Kind:   KindUnsupportedCache,
			Detail: fmt.Sprintf("KRB5CCNAME names a %s: credential cache, %s, which pure-Go Kerberos cannot read", upper, where),
			Hint:   `get a ticket into a file cache: export KRB5CCNAME=FILE:/tmp/krb5cc_$(id -u); kinit`,
		}
	}
}

// isWindowsDrive reports whether name starts like C:\ or C:/, a bare path.
func isWindowsDrive(name string) bool {
	return len(name) >= 3 && name[1] == ':' && (name[2] == '\\' || name[2] == '/') &&
		(name[0]|0x20 >= 'a' && name[0]|0x20 <= 'z')
}

// defaultCCacheName is MIT's compiled-in default on Unix.
func defaultCCacheName() string {
	return "FILE:/tmp/krb5cc_" + strconv.Itoa(os.Getuid())
}

// resolveCCachePath turns a location into the file to read: a DIR
// collection's primary cache is named in the collection's "primary" file.
func resolveCCachePath(loc ccacheLocation) (string, error) {
	if loc.Type != "DIR" {
		return loc.Path, nil
	}
	b, err := readCapped(filepath.Join(loc.Path, "primary"), 4096)
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("the primary file of the DIR: collection %s does not name a cache in it", loc.Path)
	}
	return filepath.Join(loc.Path, name), nil
}

// readCapped reads at most limit bytes of path and fails beyond that.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// errCCacheFormat is wrapped by every parse failure of a cache file.
var errCCacheFormat = errors.New("not a valid MIT credential cache (versions 3 and 4)")

// ccacheReader reads big-endian fields with bounds checks: a short or lying
// file gives an error, never a panic or an allocation beyond its size.
type ccacheReader struct {
	b   []byte
	err error
}

func (r *ccacheReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or malformed %s", errCCacheFormat, what)
	}
}

func (r *ccacheReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *ccacheReader) u8(what string) uint8 {
	if v := r.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (r *ccacheReader) u16(what string) uint16 {
	if v := r.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *ccacheReader) u32(what string) uint32 {
	if v := r.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// data reads a 32-bit length and that many bytes, copied.
func (r *ccacheReader) data(what string) []byte {
	n := r.u32(what)
	if n > uint32(len(r.b)) {
		r.fail(what)
		return nil
	}
	return append([]byte(nil), r.take(int(n), what)...)
}

// count reads a 32-bit element count, refusing counts that could not fit
// in the rest of the file at minSize bytes each.
func (r *ccacheReader) count(minSize int, what string) int {
	n := r.u32(what)
	if uint64(n)*uint64(minSize) > uint64(len(r.b)) {
		r.fail(what)
		return 0
	}
	return int(n)
}

func (r *ccacheReader) time(what string) time.Time {
	return time.Unix(int64(r.u32(what)), 0).UTC()
}

func (r *ccacheReader) principal(what string) (realm string, name types.PrincipalName) {
	name.NameType = int32(r.u32(what))
	n := r.count(4, what)
	realm = string(r.data(what))
	for i := 0; i < n && r.err == nil; i++ {
		name.NameString = append(name.NameString, string(r.data(what)))
	}
	return realm, name
}

// parseCCache parses an MIT file credential cache (format versions 3 and
// 4, the ones MIT and Heimdal write) into gokrb5's type. Configuration
// entries (X-CACHECONF:) are kept; gokrb5 skips them.
func parseCCache(b []byte) (*credentials.CCache, error) {
	r := &ccacheReader{b: b}
	if r.u8("file identifier") != 5 {
		return nil, fmt.Errorf("%w: the first byte is not 5", errCCacheFormat)
	}
	c := &credentials.CCache{Version: r.u8("version")}
	if r.err != nil {
		return nil, r.err
	}
	if c.Version != 3 && c.Version != 4 {
		return nil, fmt.Errorf("%w: format version %d", errCCacheFormat, c.Version)
	}
	if c.Version == 4 {
		r.take(int(r.u16("header length")), "header") // only the KDC time offset lives here
	}
	c.DefaultPrincipal.Realm, c.DefaultPrincipal.PrincipalName = r.principal("default principal")
	for r.err == nil && len(r.b) > 0 {
		cred := &credentials.Credential{}
		cred.Client.Realm, cred.Client.PrincipalName = r.principal("client principal")
		cred.Server.Realm, cred.Server.PrincipalName = r.principal("server principal")
		cred.Key.KeyType = int32(r.u16("key type"))
		if c.Version == 3 {
			cred.Key.KeyType = int32(r.u16("key type"))
		}
		cred.Key.KeyValue = r.data("key")
		cred.AuthTime = r.time("auth time")
		cred.StartTime = r.time("start time")
		cred.EndTime = r.time("end time")
		cred.RenewTill = r.time("renew time")
		cred.IsSKey = r.u8("is-skey flag") != 0
		cred.TicketFlags = types.NewKrbFlags()
		cred.TicketFlags.Bytes = append([]byte(nil), r.take(4, "ticket flags")...)
		for i, n := 0, r.count(6, "addresses"); i < n && r.err == nil; i++ {
			a := types.HostAddress{AddrType: int32(r.u16("address"))}
			a.Address = r.data("address")
			cred.Addresses = append(cred.Addresses, a)
		}
		for i, n := 0, r.count(6, "authorization data"); i < n && r.err == nil; i++ {
			a := types.AuthorizationDataEntry{ADType: int32(r.u16("authorization data"))}
			a.ADData = r.data("authorization data")
			cred.AuthData = append(cred.AuthData, a)
		}
		cred.Ticket = r.data("ticket")
		cred.SecondTicket = r.data("second ticket")
		if r.err == nil {
			c.Credentials = append(c.Credentials, cred)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// isConfigEntry reports whether cred is one of MIT's cache configuration
// entries rather than a ticket.
func isConfigEntry(cred *credentials.Credential) bool {
	return strings.HasPrefix(cred.Server.Realm, "X-CACHECONF")
}

// findTGT returns the cache's ticket-granting ticket for realm.
func findTGT(c *credentials.CCache, realm string) (*credentials.Credential, bool) {
	for _, cred := range c.Credentials {
		n := cred.Server.PrincipalName.NameString
		if !isConfigEntry(cred) && len(n) == 2 && n[0] == "krbtgt" && n[1] == realm && cred.Server.Realm == realm {
			return cred, true
		}
	}
	return nil, false
}
