package peertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SambaDomain is the workgroup (and NetBIOS name) of the Samba started by
// StartSamba: users log in as SambaDomain\user or as user.
const SambaDomain = "WSPROXY"

// Samba is a running winbindd, as a standalone server with one local user:
// the NTLM verifier that squid's ntlm_auth helper asks. Unlike
// ntlm_fake_auth it refuses wrong passwords.
type Samba struct {
	Conf string // smb.conf, for ntlm_auth --configfile
	Dir  string // its private, state, cache and lock directories
	User string
}

// StartSamba starts winbindd with a local user (a Unix system account is
// created for it when missing, as Samba requires) and waits until it
// answers "wbinfo -p". winbindd's socket (/run/samba/winbindd) is
// machine-wide, so one such instance runs at a time: StartSamba waits for
// any other test, in this process or another, that holds it. Cleanup stops
// winbindd and the samba-dcerpcd and rpcd_* helpers it spawned, which
// detach into sessions of their own.
func StartSamba(t testing.TB, user, pass string) *Samba {
	t.Helper()
	bin := Require(t, "winbindd", "apt-get install -y winbind")
	wbinfo := Require(t, "wbinfo", "apt-get install -y winbind")
	smbpasswd := Require(t, "smbpasswd", "apt-get install -y samba-common-bin")
	Require(t, "ntlm_auth", "apt-get install -y winbind")

	unlock, err := lockMachineWide(filepath.Join(os.TempDir(), "wsproxy-winbindd.lock"))
	if err != nil {
		t.Fatalf("peertest: winbindd lock: %v", err)
	}
	dir, err := os.MkdirTemp("", "wsproxy-samba-")
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		unlock()
	})
	// ntlm_auth runs as squid's user and reads smb.conf.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Samba{Conf: filepath.Join(dir, "smb.conf"), Dir: dir, User: user}
	for _, sub := range []string{"private", "state", "cache", "lock", "pid", "ncalrpc", "log"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	WriteFile(t, s.Conf, sambaConfig(dir), 0o644)
	ensureSystemUser(t, user)
	cmd := exec.Command(smbpasswd, "-c", s.Conf, "-a", "-s", user)
	cmd.Stdin = strings.NewReader(pass + "\n" + pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("peertest: smbpasswd -a %s: %v: %s", user, err, out)
	}

	// Registered before winbindd starts, so it runs after winbindd stopped.
	t.Cleanup(func() { stopProcessesMentioning(s.Conf) })
	p := Start(t, "winbindd", []string{bin, "-F", "--no-process-group", "-s", s.Conf, "--debug-stdout", "-d", "1"})
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := exec.CommandContext(ctx, wbinfo, "-p").Run()
		cancel()
		if err == nil {
			break
		}
		if p.Exited() {
			t.Fatalf("peer winbindd exited before answering wbinfo -p: %v\n%s", p.err, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer winbindd does not answer wbinfo -p after 20s\n%s", p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// ntlm_auth in squid's helper mode uses the privileged pipe, which
	// squid's user must reach.
	priv := filepath.Join(dir, "state", "winbindd_privileged")
	if g, err := osuser.LookupGroup("proxy"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		_ = os.Chown(priv, 0, gid)
		_ = os.Chmod(priv, 0o750)
	}
	return s
}

// StartSquidSambaNTLM starts squid requiring NTLM, verified by Samba's
// ntlm_auth against s.
func StartSquidSambaNTLM(t testing.TB, s *Samba) *Squid {
	t.Helper()
	return startSquid(t, SquidSambaNTLM, "", "", s.Conf)
}

// sambaConfig is a standalone server on loopback whose state lives in dir.
func sambaConfig(dir string) string {
	var b strings.Builder
	b.WriteString("[global]\n")
	for _, kv := range [][2]string{
		{"server role", "standalone server"},
		// An empty domain fails with NT_STATUS_NO_LOGON_SERVERS.
		{"workgroup", SambaDomain},
		{"netbios name", SambaDomain},
		{"security", "user"},
		{"passdb backend", "tdbsam:" + filepath.Join(dir, "private", "passdb.tdb")},
		{"private dir", filepath.Join(dir, "private")},
		{"state directory", filepath.Join(dir, "state")},
		{"cache directory", filepath.Join(dir, "cache")},
		{"lock directory", filepath.Join(dir, "lock")},
		{"pid directory", filepath.Join(dir, "pid")},
		{"ncalrpc dir", filepath.Join(dir, "ncalrpc")},
		{"log file", filepath.Join(dir, "log", "log.%m")},
		{"ntlm auth", "ntlmv2-only"},
		{"disable netbios", "yes"},
		{"interfaces", "lo"},
		{"bind interfaces only", "yes"},
		{"idmap config * : backend", "tdb"},
		{"idmap config * : range", "3000-7999"},
	} {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	return b.String()
}

// ensureSystemUser creates a system account without home or shell for
// user when none exists: Samba's passdb maps its users to Unix accounts.
func ensureSystemUser(t testing.TB, user string) {
	t.Helper()
	if _, err := osuser.Lookup(user); err == nil {
		return
	}
	useradd := Require(t, "useradd", "apt-get install -y passwd")
	out, err := exec.Command(useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("already exists")) {
		t.Fatalf("peertest: useradd %s: %v: %s", user, err, out)
	}
}
