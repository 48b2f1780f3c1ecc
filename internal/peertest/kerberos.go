package peertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kerberos test realm facts shared by the KDC and the squid that trusts it.
const (
	KerberosRealm = "WSPROXY.TEST"       // the test realm
	ProxyHost     = "proxy.wsproxy.test" // the proxy's name; /etc/hosts maps it to 127.0.0.1
	ProxySPN      = "HTTP/" + ProxyHost  // the service principal squid holds a key for
)

// KDC is a running MIT Kerberos KDC for KerberosRealm on 127.0.0.1. Its
// configuration lives in a temporary directory; /etc/krb5.conf is never
// read or written.
type KDC struct {
	Realm    string
	Addr     string // "127.0.0.1:port", UDP and TCP
	Dir      string // database, configs, keytabs and caches
	Krb5Conf string // the client configuration: pass it as KRB5_CONFIG
	kdcConf  string
}

// StartKDC creates a realm in a temporary directory, starts krb5kdc in the
// foreground on 127.0.0.1 and waits until it accepts TCP connections. The
// realm holds ProxySPN with a random key; add users with AddPrincipal.
func StartKDC(t testing.TB) *KDC {
	t.Helper()
	kdcBin := Require(t, "krb5kdc", "apt-get install -y krb5-kdc")
	Require(t, "kdb5_util", "apt-get install -y krb5-kdc")
	Require(t, "kadmin.local", "apt-get install -y krb5-admin-server")
	Require(t, "kinit", "apt-get install -y krb5-user")
	dir := t.TempDir()
	port := FreePort(t)
	k := &KDC{
		Realm:    KerberosRealm,
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		Dir:      dir,
		Krb5Conf: filepath.Join(dir, "krb5.conf"),
		kdcConf:  filepath.Join(dir, "kdc.conf"),
	}
	WriteFile(t, k.Krb5Conf, KerberosClientConfig(k.Realm, k.Addr), 0o644)
	WriteFile(t, k.kdcConf, fmt.Sprintf(`[kdcdefaults]
 kdc_listen = %[2]s
 kdc_tcp_listen = %[2]s
[realms]
 %[3]s = {
  database_name = %[1]s/principal
  key_stash_file = %[1]s/stash
  acl_file = %[1]s/kadm5.acl
  kdc_listen = %[2]s
  kdc_tcp_listen = %[2]s
  max_life = 10h
  max_renewable_life = 0
 }
[logging]
 kdc = STDERR
`, dir, k.Addr, k.Realm), 0o644)
	WriteFile(t, filepath.Join(dir, "kadm5.acl"), "", 0o644)
	k.run(t, "kdb5_util", "-r", k.Realm, "create", "-s", "-P", "master-"+strconv.Itoa(port))
	k.Admin(t, "addprinc -randkey "+ProxySPN)
	p := Start(t, "krb5kdc", []string{kdcBin, "-n", "-r", k.Realm}, k.Env()...)
	p.WaitTCP(t, k.Addr, 15*time.Second)
	return k
}

// KerberosClientConfig is a krb5.conf for realm with its KDC at addr, no
// DNS look-ups at all, and host names taken as written (no canonicalisation,
// no reverse DNS, which would turn 127.0.0.1 into "localhost").
func KerberosClientConfig(realm, addr string) string {
	domain := strings.ToLower(realm)
	return fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
[realms]
 %[1]s = {
  kdc = %[2]s
 }
[domain_realm]
 .%[3]s = %[1]s
 %[3]s = %[1]s
`, realm, addr, domain)
}

// Env is the environment every Kerberos program of this realm needs.
func (k *KDC) Env() []string {
	return []string{"KRB5_CONFIG=" + k.Krb5Conf, "KRB5_KDC_PROFILE=" + k.kdcConf}
}

// Admin runs one kadmin.local query (for example "addprinc -pw PW bob")
// and fails the test when it fails.
func (k *KDC) Admin(t testing.TB, query string) {
	t.Helper()
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", query)
}

// AddPrincipal creates name with password pw, or with a random key when pw
// is empty.
func (k *KDC) AddPrincipal(t testing.TB, name, pw string) {
	t.Helper()
	if pw == "" {
		k.Admin(t, "addprinc -randkey "+name)
		return
	}
	k.Admin(t, fmt.Sprintf("addprinc -pw %s %s", pw, name))
}

// Keytab writes the current keys of principal into a new keytab file (mode
// 0600) and returns its path. The keys are not changed, so a password keeps
// working.
func (k *KDC) Keytab(t testing.TB, principal string) string {
	t.Helper()
	path := filepath.Join(k.Dir, strings.NewReplacer("/", "_", "@", "_").Replace(principal)+".keytab")
	k.Admin(t, fmt.Sprintf("ktadd -k %s -norandkey %s", path, principal))
	return path
}

// Kinit gets a ticket-granting ticket for principal with password into a
// new FILE: cache and returns the cache's path (without the "FILE:"
// prefix). extra goes to kinit before the principal, for example "-l", "2s".
func (k *KDC) Kinit(t testing.TB, principal, password string, extra ...string) string {
	t.Helper()
	f, err := os.CreateTemp(k.Dir, "ccache-")
	if err != nil {
		t.Fatalf("peertest: ccache: %v", err)
	}
	path := f.Name()
	f.Close()
	os.Remove(path) // kinit creates it with mode 0600
	args := append([]string{"-c", "FILE:" + path}, extra...)
	args = append(args, principal)
	cmd := exec.Command("kinit", args...)
	cmd.Env = append(os.Environ(), k.Env()...)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("peertest: kinit %s: %v\n%s", principal, err, out)
	}
	return path
}

// ServiceTicket adds a service ticket for spn to the cache at ccache with
// kvno, as a browser's earlier visit would have.
func (k *KDC) ServiceTicket(t testing.TB, ccache, spn string) {
	t.Helper()
	cmd := exec.Command("kvno", "-c", "FILE:"+ccache, spn)
	cmd.Env = append(os.Environ(), k.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("peertest: kvno %s: %v\n%s", spn, err, out)
	}
}

func (k *KDC) run(t testing.TB, program string, args ...string) {
	t.Helper()
	cmd := exec.Command(Require(t, program, "apt-get install -y krb5-kdc krb5-admin-server"), args...)
	cmd.Env = append(os.Environ(), k.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("peertest: %s %s: %v\n%s", program, strings.Join(args, " "), err, out)
	}
}

// EnsureHostsEntry makes name resolve to 127.0.0.1 by appending a line to
// /etc/hosts when no line names it yet; it never rewrites existing lines.
// Without the right to write /etc/hosts the test is skipped (or fails under
// WSPROXY_REQUIRE_PEERS=1).
func EnsureHostsEntry(t testing.TB, name string) {
	t.Helper()
	b, err := os.ReadFile("/etc/hosts")
	if err != nil {
		Missing(t, fmt.Sprintf("cannot read /etc/hosts to map %s: %v", name, err))
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		for _, f := range fields[min(1, len(fields)):] {
			if strings.EqualFold(f, name) {
				return
			}
		}
	}
	f, err := os.OpenFile("/etc/hosts", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		Missing(t, fmt.Sprintf("cannot append %q to /etc/hosts: %v", "127.0.0.1 "+name, err))
		return
	}
	defer f.Close()
	prefix := ""
	if len(b) > 0 && b[len(b)-1] != '\n' {
		prefix = "\n"
	}
	if _, err := fmt.Fprintf(f, "%s127.0.0.1 %s\n", prefix, name); err != nil {
		t.Fatalf("peertest: append to /etc/hosts: %v", err)
	}
}

// StartSquidNegotiate starts squid on 127.0.0.1 requiring Negotiate
// (Kerberos) through negotiate_kerberos_auth, with a keytab for ProxySPN
// taken from kdc. Clients must name the proxy ProxyHost (EnsureHostsEntry
// is called) so that they ask for a ticket for ProxySPN.
//
// also adds schemes offered after Negotiate, as Active Directory proxies
// do; only SquidNTLM (ntlm_fake_auth: any password) is supported.
func StartSquidNegotiate(t testing.TB, kdc *KDC, also ...SquidAuth) *Squid {
	t.Helper()
	return startSquidNegotiate(t, kdc, true, also...)
}

func startSquidNegotiate(t testing.TB, kdc *KDC, keepAlive bool, also ...SquidAuth) *Squid {
	t.Helper()
	bin := Require(t, "squid", "apt-get install -y squid")
	helper := "/usr/lib/squid/negotiate_kerberos_auth"
	if _, err := os.Stat(helper); err != nil {
		Missing(t, helper+" not found (install: apt-get install -y squid)")
	}
	EnsureHostsEntry(t, ProxyHost)
	dir, err := os.MkdirTemp("", "wsproxy-squid-krb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keytab := filepath.Join(dir, "HTTP.keytab")
	kdc.Admin(t, fmt.Sprintf("ktadd -k %s -norandkey %s", keytab, ProxySPN))
	if err := os.Chmod(keytab, 0o600); err != nil {
		t.Fatal(err)
	}
	krb5conf := filepath.Join(dir, "krb5.conf")
	WriteFile(t, krb5conf, KerberosClientConfig(kdc.Realm, kdc.Addr), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "rcache"), 0o700); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	var b strings.Builder
	b.WriteString(squidBaseConfig(dir, port))
	fmt.Fprintf(&b, "auth_param negotiate program %s -k %s -s %s@%s\n", helper, keytab, ProxySPN, kdc.Realm)
	keep := map[bool]string{true: "on", false: "off"}[keepAlive]
	fmt.Fprintf(&b, "auth_param negotiate children 4 startup=1 idle=1\nauth_param negotiate keep_alive %s\n", keep)
	for _, a := range also {
		switch a {
		case SquidNTLM:
			fmt.Fprintf(&b, "auth_param ntlm program /usr/lib/squid/ntlm_fake_auth\nauth_param ntlm children 2\nauth_param ntlm keep_alive %s\n", keep)
		default:
			t.Fatalf("peertest: StartSquidNegotiate: unsupported extra scheme %d", a)
		}
	}
	b.WriteString("acl authed proxy_auth REQUIRED\nhttp_access deny !authed\nhttp_access allow localhost\nhttp_access deny all\n")
	conf := filepath.Join(dir, "squid.conf")
	WriteFile(t, conf, b.String(), 0o644)
	ChownToProxyUser(dir)
	name := "wsproxykrb" + strconv.Itoa(port)
	p := Start(t, "squid", []string{bin, "-N", "-n", name, "-f", conf},
		"KRB5_CONFIG="+krb5conf, "KRB5RCACHEDIR="+filepath.Join(dir, "rcache"), "KRB5_KTNAME=FILE:"+keytab)
	s := &Squid{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, proc: p}
	p.WaitTCP(t, s.Addr, 30*time.Second)
	return s
}
