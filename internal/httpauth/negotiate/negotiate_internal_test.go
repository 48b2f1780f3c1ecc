package negotiate

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

func TestParseCCacheName(t *testing.T) {
	cases := []struct {
		in, typ, path string
		kind          Kind // 0: no error
	}{
		{in: "FILE:/tmp/krb5cc_1000", typ: "FILE", path: "/tmp/krb5cc_1000"},
		{in: "file:/tmp/x", typ: "FILE", path: "/tmp/x"},
		{in: "/tmp/krb5cc_1000", typ: "FILE", path: "/tmp/krb5cc_1000"},
		{in: "relative/cache", typ: "FILE", path: "relative/cache"},
		{in: `C:\Users\a\krb5cc`, typ: "FILE", path: `C:\Users\a\krb5cc`},
		{in: "/tmp/odd:name", typ: "FILE", path: "/tmp/odd:name"},
		{in: "DIR:/run/user/1000/krb5cc", typ: "DIR", path: "/run/user/1000/krb5cc"},
		{in: "DIR::/run/user/1000/krb5cc/tktAbc", typ: "FILE", path: "/run/user/1000/krb5cc/tktAbc"},
		{in: "FILE:", kind: KindBadCache},
		{in: "DIR:", kind: KindBadCache},
		{in: "", kind: KindBadCache},
		{in: "KCM:", kind: KindUnsupportedCache},
		{in: "KCM:1000", kind: KindUnsupportedCache},
		{in: "KEYRING:persistent:1000", kind: KindUnsupportedCache},
		{in: "API:", kind: KindUnsupportedCache},
		{in: "MEMORY:x", kind: KindUnsupportedCache},
		{in: "XYZ:whatever", kind: KindUnsupportedCache},
	}
	for _, tc := range cases {
		loc, err := parseCCacheName(tc.in)
		if tc.kind == 0 {
			if err != nil || loc.Type != tc.typ || loc.Path != tc.path {
				t.Errorf("parseCCacheName(%q) = %+v, %v; want %s %s", tc.in, loc, err, tc.typ, tc.path)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != tc.kind {
			t.Errorf("parseCCacheName(%q) error %v, want kind %d", tc.in, err, tc.kind)
			continue
		}
		if tc.kind == KindUnsupportedCache {
			if !strings.Contains(err.Error(), "KRB5CCNAME=FILE:") || !strings.Contains(err.Error(), "kinit") ||
				!errors.Is(err, ErrUnsupportedCache) || !FallbackAllowed(err) {
				t.Errorf("parseCCacheName(%q): %q does not say what to do", tc.in, err)
			}
		}
	}
}

// TestUnsupportedCacheIsNotSilent: a KCM cache with no other source is an
// error that names the cache type, not an attempt with nothing.
func TestUnsupportedCacheIsNotSilent(t *testing.T) {
	conf := writeKrb5Conf(t)
	cfg := &Config{Getenv: envMap("KRB5_CONFIG", conf, "KRB5CCNAME", "KCM:1000")}
	_, err := cfg.NewContext("proxy.example.com").Start(context.Background())
	if !errors.Is(err, ErrUnsupportedCache) || !strings.Contains(err.Error(), "KCM:") {
		t.Fatalf("got %v, want the unsupported KCM: cache", err)
	}
}

func TestDIRCollectionPrimary(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "primary"), []byte("tktXYZ\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := resolveCCachePath(ccacheLocation{Type: "DIR", Path: dir})
	if err != nil || p != filepath.Join(dir, "tktXYZ") {
		t.Fatalf("resolveCCachePath = %q, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "primary"), []byte("../etc/passwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveCCachePath(ccacheLocation{Type: "DIR", Path: dir}); err == nil {
		t.Fatal("a primary file pointing outside the collection was followed")
	}
}

const testKrb5Conf = `[libdefaults]
 default_realm = CORP.EXAMPLE
 dns_lookup_kdc = false
 v4_instance_resolve = true
[realms]
 CORP.EXAMPLE = {
  kdc = 127.0.0.1:1
 }
 LAB.EXAMPLE = {
  kdc = 127.0.0.1:2
 }
[domain_realm]
 .example.com = CORP.EXAMPLE
 .lab.example.com = LAB.EXAMPLE
 special.example.com = LAB.EXAMPLE
`

func writeKrb5Conf(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(p, []byte(testKrb5Conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTargetAndRealmChoice(t *testing.T) {
	confPath := writeKrb5Conf(t)
	cases := []struct {
		name      string
		cfg       Config
		host      string
		spn, real string
	}{
		{name: "domain suffix", host: "proxy.example.com", spn: "HTTP/proxy.example.com", real: "CORP.EXAMPLE"},
		{name: "most specific suffix", host: "px.lab.example.com", spn: "HTTP/px.lab.example.com", real: "LAB.EXAMPLE"},
		{name: "exact host entry", host: "special.example.com", spn: "HTTP/special.example.com", real: "LAB.EXAMPLE"},
		{name: "upper case and trailing dot", host: "PROXY.Example.COM.", spn: "HTTP/proxy.example.com", real: "CORP.EXAMPLE"},
		{name: "unmapped: the client's realm", host: "proxy.other.net", spn: "HTTP/proxy.other.net", real: ""},
		{name: "IP literal", host: "10.0.0.1", spn: "HTTP/10.0.0.1", real: ""},
		{name: "SPN override", cfg: Config{SPN: "HTTP/px.lab.example.com"}, host: "10.0.0.1", spn: "HTTP/px.lab.example.com", real: "LAB.EXAMPLE"},
		{name: "SPN override with realm", cfg: Config{SPN: "HTTP/gw@OTHER.EXAMPLE"}, host: "proxy.example.com", spn: "HTTP/gw", real: "OTHER.EXAMPLE"},
		{name: "realm override", cfg: Config{Realm: "X.EXAMPLE"}, host: "proxy.example.com", spn: "HTTP/proxy.example.com", real: "X.EXAMPLE"},
		{name: "CNAME followed when asked", cfg: Config{CanonicalizeHost: true, LookupCNAME: func(_ context.Context, h string) (string, error) {
			return "real-proxy.lab.example.com.", nil
		}}, host: "proxy", spn: "HTTP/real-proxy.lab.example.com", real: "LAB.EXAMPLE"},
		{name: "CNAME failure keeps the name", cfg: Config{CanonicalizeHost: true, LookupCNAME: func(_ context.Context, h string) (string, error) {
			return "", errors.New("no such host")
		}}, host: "proxy.example.com", spn: "HTTP/proxy.example.com", real: "CORP.EXAMPLE"},
		{name: "CNAME not looked up by default", cfg: Config{LookupCNAME: func(_ context.Context, h string) (string, error) {
			t.Error("CNAME looked up without CanonicalizeHost")
			return "x", nil
		}}, host: "proxy.example.com", spn: "HTTP/proxy.example.com", real: "CORP.EXAMPLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Getenv = envMap("KRB5_CONFIG", confPath)
			conf, err := cfg.configOrDefault()
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.target(context.Background(), conf, tc.host)
			if got.SPN != tc.spn || got.Realm != tc.real {
				t.Fatalf("target(%q) = %+v, want %s in %q", tc.host, got, tc.spn, tc.real)
			}
		})
	}
}

func TestKrb5ConfPath(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Getenv: envMap()}, "/etc/krb5.conf"},
		{Config{Getenv: envMap("KRB5_CONFIG", "/a/krb5.conf")}, "/a/krb5.conf"},
		{Config{Getenv: envMap("KRB5_CONFIG", "/a/krb5.conf:/b/krb5.conf")}, "/a/krb5.conf"},
		{Config{Krb5Conf: "/c", Getenv: envMap("KRB5_CONFIG", "/a")}, "/c"},
	} {
		if got := tc.cfg.krb5ConfPath(); got != tc.want {
			t.Errorf("krb5ConfPath() = %q, want %q", got, tc.want)
		}
	}
}

// TestNoKrb5ConfMeansDNS: without any configuration file, KDCs come from
// DNS SRV records, as MIT does.
func TestNoKrb5ConfMeansDNS(t *testing.T) {
	cfg := &Config{Getenv: envMap("KRB5_CONFIG", filepath.Join(t.TempDir(), "absent"))}
	conf, err := cfg.configOrDefault()
	if err != nil || !conf.LibDefaults.DNSLookupKDC {
		t.Fatalf("configOrDefault = %v, %v; want DNS lookup of KDCs", conf, err)
	}
	cfg.Krb5Conf = filepath.Join(t.TempDir(), "absent")
	if _, err := cfg.configOrDefault(); !errors.Is(err, ErrConfig) {
		t.Fatalf("an explicit missing krb5.conf gave %v, want ErrConfig", err)
	}
}

// ccacheFile builds an MIT v4 cache holding one TGT for principal@realm.
func ccacheFile(principal, realm string, end time.Time) []byte {
	var b []byte
	u16 := func(v uint16) { b = binary.BigEndian.AppendUint16(b, v) }
	u32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	data := func(s []byte) { u32(uint32(len(s))); b = append(b, s...) }
	princ := func(realm string, names ...string) {
		u32(1)
		u32(uint32(len(names)))
		data([]byte(realm))
		for _, n := range names {
			data([]byte(n))
		}
	}
	b = append(b, 5, 4)
	u16(12)
	u16(1)
	u16(8)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	princ(realm, principal)
	princ(realm, principal)
	princ(realm, "krbtgt", realm)
	u16(18)
	data(make([]byte, 32))
	for _, tm := range []time.Time{end.Add(-time.Hour), end.Add(-time.Hour), end, end} {
		u32(uint32(tm.Unix()))
	}
	b = append(b, 0)
	u32(0x40e00000)
	u32(0)
	u32(0)
	data([]byte{0x61, 0x03, 0x02, 0x01, 0x05})
	data(nil)
	return b
}

func TestParseCCache(t *testing.T) {
	end := time.Unix(2000000000, 0).UTC()
	c, err := parseCCache(ccacheFile("alice", "CORP.EXAMPLE", end))
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultPrincipal.Realm != "CORP.EXAMPLE" || c.DefaultPrincipal.PrincipalName.PrincipalNameString() != "alice" {
		t.Fatalf("default principal %+v", c.DefaultPrincipal)
	}
	tgt, ok := findTGT(c, "CORP.EXAMPLE")
	if !ok || !tgt.EndTime.Equal(end) || tgt.Key.KeyType != 18 || len(tgt.Ticket) != 5 {
		t.Fatalf("TGT %+v, %v", tgt, ok)
	}
	// Every cut fails except the one right after the default principal
	// (a cache holding no ticket yet): 4 header + 12 header field + 33 principal bytes.
	full := ccacheFile("alice", "CORP.EXAMPLE", end)
	for n := 0; n < len(full); n++ {
		_, err := parseCCache(full[:n])
		if (err == nil) != (n == 49) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := parseCCache([]byte{5, 2, 0, 0}); err == nil {
		t.Error("format version 2 accepted")
	}
}

// TestExpiredCacheWithoutKDC: an expired TGT is recognised from the cache
// alone, before any KDC is asked.
func TestExpiredCacheWithoutKDC(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cc")
	if err := os.WriteFile(cache, ccacheFile("alice", "CORP.EXAMPLE", time.Now().Add(-time.Minute)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Getenv: envMap("KRB5_CONFIG", writeKrb5Conf(t), "KRB5CCNAME", "FILE:"+cache)}
	_, err := cfg.NewContext("proxy.example.com").Start(context.Background())
	if !errors.Is(err, ErrTicketExpired) || !strings.Contains(err.Error(), "alice@CORP.EXAMPLE") || !FallbackAllowed(err) {
		t.Fatalf("got %v, want an expired ticket of alice@CORP.EXAMPLE", err)
	}
	// A cache of another user is skipped when Username names someone else.
	cfg.Username = "bob"
	_, err = cfg.NewContext("proxy.example.com").Start(context.Background())
	if !errors.Is(err, ErrNoTicket) || !strings.Contains(err.Error(), "not bob@CORP.EXAMPLE") {
		t.Fatalf("got %v, want the cache skipped for bob", err)
	}
}

func TestStartHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Config{}).NewContext("p").Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start on a cancelled context: %v", err)
	}
}

func TestErrorClasses(t *testing.T) {
	for k := KindNoTicket; k <= KindMutualAuth; k++ {
		e := &Error{Kind: k, Detail: "x"}
		if !errors.Is(e, kindSentinels[k]) {
			t.Errorf("kind %d does not match its sentinel", k)
		}
		want := k != KindRejected && k != KindMutualAuth
		if FallbackAllowed(e) != want {
			t.Errorf("FallbackAllowed(kind %d) = %v", k, !want)
		}
	}
	r := RejectedError("HTTP/proxy.example.com")
	if !strings.Contains(r.Error(), "is the SPN HTTP/proxy.example.com right?") {
		t.Errorf("rejection text %q", r)
	}
}

func TestKDCErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		text string
		is   error
	}{
		{"[Root cause: KDC_Error] KDC_Error: AS Exchange Error: kerberos error response from KDC: KRB Error: (24) KDC_ERR_PREAUTH_FAILED Pre-authentication information was invalid", ErrPreauthFailed},
		{"AS_REP is not valid or client password/keytab incorrect", ErrPreauthFailed},
		{"KRB Error: (6) KDC_ERR_C_PRINCIPAL_UNKNOWN Client not found in Kerberos database", ErrUnknownPrincipal},
		{"KRB Error: (7) KDC_ERR_S_PRINCIPAL_UNKNOWN Server not found in Kerberos database", ErrUnknownService},
		{"KRB Error: (32) KRB_AP_ERR_TKT_EXPIRED Ticket expired", ErrTicketExpired},
		{"failed to communicate with KDC. Attempts made with UDP (x) and then TCP (y)", ErrKDCUnreachable},
		{"no KDCs defined in configuration for realm X", ErrConfig},
		{"KRB Error: (12) KDC_ERR_POLICY KDC policy rejects request", ErrKDCError},
	} {
		e := kdcError(errors.New(tc.text), "alice@R", "R", "step")
		if !errors.Is(e, tc.is) {
			t.Errorf("%q classified as kind %d (%v), want %v", tc.text, e.Kind, e, tc.is)
		}
		if strings.Contains(e.Error(), "Root cause") {
			t.Errorf("gokrb5's text leaked into %q", e)
		}
	}
}

// apRepAnswer builds what an acceptor answers: a NegTokenResp with an
// RFC 4121 AP-REP made with key and echoing ctime/cusec.
func apRepAnswer(t testing.TB, state spnego.NegState, key types.EncryptionKey, ctime time.Time, cusec int) []byte {
	t.Helper()
	part, err := asn1.Marshal(struct {
		CTime time.Time `asn1:"generalized,explicit,tag:0"`
		Cusec int       `asn1:"explicit,tag:1"`
	}{ctime, cusec})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(part, asnAppTag.EncAPRepPart), key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := asn1.Marshal(struct {
		PVNO    int                 `asn1:"explicit,tag:0"`
		MsgType int                 `asn1:"explicit,tag:1"`
		EncPart types.EncryptedData `asn1:"explicit,tag:2"`
	}{5, msgtype.KRB_AP_REP, ed})
	if err != nil {
		t.Fatal(err)
	}
	oid, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
	mech := asn1tools.AddASNAppTag(append(append(oid, 0x02, 0x00), asn1tools.AddASNAppTag(rep, asnAppTag.APREP)...), 0)
	resp := spnego.NegTokenResp{NegState: asn1.Enumerated(state), SupportedMech: gssapi.OIDKRB5.OID(), ResponseToken: mech}
	b, err := resp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	other := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: append(make([]byte, 31), 1)}
	ctime := time.Unix(1700000000, 0).UTC()
	x := &Context{spn: "HTTP/p", init: &initToken{SessionKey: key, CTime: ctime.Add(123 * time.Microsecond), Cusec: 123}}
	rejectResp, _ := (&spnego.NegTokenResp{NegState: asn1.Enumerated(spnego.NegStateReject)}).Marshal()
	doneResp, _ := (&spnego.NegTokenResp{NegState: asn1.Enumerated(spnego.NegStateAcceptCompleted), SupportedMech: gssapi.OIDKRB5.OID()}).Marshal()
	for _, tc := range []struct {
		name  string
		token []byte
		is    error // nil: accepted
	}{
		{"no token", nil, nil},
		{"valid AP-REP", apRepAnswer(t, spnego.NegStateAcceptCompleted, key, ctime, 123), nil},
		{"accept-completed without AP-REP", doneResp, nil},
		{"wrong key", apRepAnswer(t, spnego.NegStateAcceptCompleted, other, ctime, 123), ErrMutualAuth},
		{"wrong time", apRepAnswer(t, spnego.NegStateAcceptCompleted, key, ctime.Add(time.Second), 123), ErrMutualAuth},
		{"wrong microseconds", apRepAnswer(t, spnego.NegStateAcceptCompleted, key, ctime, 124), ErrMutualAuth},
		{"reject", rejectResp, ErrRejected},
		{"garbage", []byte("not a token"), ErrMutualAuth},
		{"too large", append([]byte{0xa1}, make([]byte, maxTokenSize)...), ErrMutualAuth},
	} {
		err := x.Verify(tc.token)
		if (tc.is == nil) != (err == nil) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.is)
		}
	}
	if err := (&Context{}).Verify(doneResp); !errors.Is(err, ErrMutualAuth) {
		t.Errorf("Verify before Start = %v", err)
	}
}

func TestDescribe(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cc")
	if err := os.WriteFile(cache, ccacheFile("alice", "CORP.EXAMPLE", time.Now().Add(time.Hour)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Username: "alice", Password: "pw-secret", Keytab: "FILE:/k.keytab",
		Getenv: envMap("KRB5_CONFIG", writeKrb5Conf(t), "KRB5CCNAME", cache)}
	got := cfg.Describe(context.Background(), "proxy.example.com")
	for _, want := range []string{"SPN HTTP/proxy.example.com", "realm CORP.EXAMPLE", "ticket cache " + cache + " of alice@CORP.EXAMPLE", "client keytab /k.keytab", "password of alice"} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe = %q, missing %q", got, want)
		}
	}
	if strings.Contains(got, "pw-secret") {
		t.Errorf("Describe shows the password: %q", got)
	}
}
