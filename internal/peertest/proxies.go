package peertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tinyproxy starts tinyproxy on 127.0.0.1 and returns its address
// ("127.0.0.1:port"). With a non-empty user it requires BasicAuth user pass;
// tinyproxy answers a wrong password with 401, not 407.
func Tinyproxy(t testing.TB, user, pass string) string {
	t.Helper()
	bin := Require(t, "tinyproxy", "apt-get install -y tinyproxy")
	dir := t.TempDir()
	port := FreePort(t)
	path := filepath.Join(dir, "tinyproxy.conf")
	WriteFile(t, path, TinyproxyConfig(port, user, pass), 0o644)
	p := Start(t, "tinyproxy", []string{bin, "-d", "-c", path})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitTCP(t, addr, 10*time.Second)
	return addr
}

// SquidAuth selects the authentication a Squid instance requires.
type SquidAuth int

const (
	SquidNoAuth SquidAuth = iota
	SquidBasic            // basic_ncsa_auth with an htpasswd file
	SquidDigest           // digest_file_auth with a plain user:pass file
	SquidNTLM             // ntlm_fake_auth (any password) plus Basic
	// SquidSambaNTLM is NTLM verified by Samba's ntlm_auth through a
	// running winbindd, which refuses wrong passwords; start it with
	// StartSquidSambaNTLM.
	SquidSambaNTLM
)

// Squid is a running squid instance.
type Squid struct {
	Addr string // "127.0.0.1:port"
	Dir  string // config, logs and password files
	proc *Process
}

// AccessLog returns squid's access log so far.
func (s *Squid) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "access.log"))
	return string(b)
}

// TinyproxyConfig is a tinyproxy configuration listening on 127.0.0.1:port,
// requiring BasicAuth user pass when user is set.
func TinyproxyConfig(port int, user, pass string) string {
	conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout 600\nMaxClients 100\nAllow 127.0.0.1\nLogLevel Info\n", port)
	if user != "" {
		conf += fmt.Sprintf("BasicAuth %s %s\n", user, pass)
	}
	return conf
}

// WriteSquidFiles writes squid.conf for 127.0.0.1:port and the password
// files the auth kind needs into dir, and returns the config's path. dir and
// its parents must be readable by squid's "proxy" user.
func WriteSquidFiles(dir string, port int, auth SquidAuth, user, pass string) (string, error) {
	return writeSquidFiles(dir, port, auth, user, pass, "")
}

// writeSquidFiles is WriteSquidFiles; smbConf is the Samba configuration
// ntlm_auth reads for SquidSambaNTLM.
func writeSquidFiles(dir string, port int, auth SquidAuth, user, pass, smbConf string) (string, error) {
	var b strings.Builder
	b.WriteString(squidBaseConfig(dir, port))
	htpasswd := func() error {
		out, err := exec.Command("htpasswd", "-bc", filepath.Join(dir, "passwd"), user, pass).CombinedOutput()
		if err != nil {
			return fmt.Errorf("htpasswd (apt-get install -y apache2-utils): %v: %s", err, out)
		}
		return nil
	}
	switch auth {
	case SquidBasic:
		if err := htpasswd(); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "auth_param basic program /usr/lib/squid/basic_ncsa_auth %s/passwd\nauth_param basic realm squid-basic\n", dir)
	case SquidDigest:
		if err := os.WriteFile(filepath.Join(dir, "digest_passwd"), []byte(user+":"+pass+"\n"), 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "auth_param digest program /usr/lib/squid/digest_file_auth %s/digest_passwd\nauth_param digest realm squid-digest\n", dir)
	case SquidNTLM:
		if err := htpasswd(); err != nil {
			return "", err
		}
		b.WriteString("auth_param ntlm program /usr/lib/squid/ntlm_fake_auth\nauth_param ntlm children 2\n")
		fmt.Fprintf(&b, "auth_param basic program /usr/lib/squid/basic_ncsa_auth %s/passwd\nauth_param basic realm squid-basic\n", dir)
	case SquidSambaNTLM:
		if smbConf == "" {
			return "", fmt.Errorf("SquidSambaNTLM needs a running Samba: use StartSquidSambaNTLM")
		}
		fmt.Fprintf(&b, "auth_param ntlm program /usr/bin/ntlm_auth --helper-protocol=squid-2.5-ntlmssp --configfile=%s\n", smbConf)
		b.WriteString("auth_param ntlm children 2\nauth_param ntlm keep_alive on\n")
	}
	if auth != SquidNoAuth {
		b.WriteString("acl authed proxy_auth REQUIRED\nhttp_access deny !authed\n")
	}
	b.WriteString("http_access allow localhost\nhttp_access deny all\n")
	conf := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	ChownToProxyUser(dir)
	return conf, nil
}

// squidBaseConfig is the part of every squid.conf that does not depend on
// authentication: the listener on 127.0.0.1:port, files in dir, no cache.
func squidBaseConfig(dir string, port int) string {
	return fmt.Sprintf("http_port 127.0.0.1:%[2]d\nvisible_hostname squid-test\n"+
		"pid_filename %[1]s/squid.pid\ncache_log %[1]s/cache.log\naccess_log stdio:%[1]s/access.log\ncoredump_dir %[1]s\n"+
		"cache deny all\ncache_mem 8 MB\npinger_enable off\nshutdown_lifetime 1 seconds\n", dir, port)
}

// ChownToProxyUser gives dir and its files to squid's "proxy" user, when
// that user exists.
func ChownToProxyUser(dir string) {
	if u, err := osuser.Lookup("proxy"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
	}
}

// StartSquid starts squid on 127.0.0.1 requiring the given authentication for
// user/pass. It takes a few seconds; tests should share one instance where
// they can.
func StartSquid(t testing.TB, auth SquidAuth, user, pass string) *Squid {
	t.Helper()
	return startSquid(t, auth, user, pass, "")
}

func startSquid(t testing.TB, auth SquidAuth, user, pass, smbConf string) *Squid {
	t.Helper()
	bin := Require(t, "squid", "apt-get install -y squid")
	dir, err := os.MkdirTemp("", "wsproxy-squid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if auth == SquidBasic || auth == SquidNTLM {
		Require(t, "htpasswd", "apt-get install -y apache2-utils")
	}
	port := FreePort(t)
	conf, err := writeSquidFiles(dir, port, auth, user, pass, smbConf)
	if err != nil {
		t.Fatalf("peertest: squid files: %v", err)
	}
	name := "wsproxy" + strconv.Itoa(port)
	p := Start(t, "squid", []string{bin, "-N", "-n", name, "-f", conf})
	s := &Squid{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, proc: p}
	p.WaitTCP(t, s.Addr, 30*time.Second)
	return s
}

// Websockify starts Debian's websockify on 127.0.0.1 relaying to target and
// returns its listen address. certFile, when set, is a PEM file holding a
// certificate and key; websockify then serves wss:// and ws:// on one port.
func Websockify(t testing.TB, target, certFile string, extra ...string) string {
	t.Helper()
	return WebsockifyOn(t, "127.0.0.1", target, certFile, extra...)
}

// WebsockifyOn is Websockify listening on host instead of 127.0.0.1.
func WebsockifyOn(t testing.TB, host, target, certFile string, extra ...string) string {
	t.Helper()
	bin := Require(t, "websockify", "apt-get install -y websockify")
	port := FreePort(t)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	argv := []string{bin}
	if certFile != "" {
		argv = append(argv, "--cert", certFile)
	}
	argv = append(argv, extra...)
	argv = append(argv, addr, target)
	p := Start(t, "websockify", argv)
	p.WaitTCP(t, addr, 15*time.Second)
	return addr
}
