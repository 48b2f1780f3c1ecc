package peertest

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gssAcceptScript calls MIT's own acceptor, gss_accept_sec_context from
// libgssapi_krb5, through Python's ctypes: one base64 token on stdin, one
// line "major minor flags name token" on stdout (name and token in base64).
const gssAcceptScript = `
import base64, ctypes, sys
lib = ctypes.CDLL("libgssapi_krb5.so.2")
class Buf(ctypes.Structure):
    _fields_ = [("length", ctypes.c_size_t), ("value", ctypes.c_void_p)]
OM = ctypes.c_uint32
lib.gss_accept_sec_context.restype = OM
lib.gss_display_name.restype = OM
tok = base64.b64decode(sys.stdin.readline().strip())
raw = ctypes.create_string_buffer(tok, len(tok))
inbuf = Buf(len(tok), ctypes.cast(raw, ctypes.c_void_p))
minor, flags = OM(0), OM(0)
ctx, src, mech = ctypes.c_void_p(None), ctypes.c_void_p(None), ctypes.c_void_p(None)
out = Buf(0, None)
major = lib.gss_accept_sec_context(ctypes.byref(minor), ctypes.byref(ctx), None, ctypes.byref(inbuf), None,
    ctypes.byref(src), ctypes.byref(mech), ctypes.byref(out), ctypes.byref(flags), None, None)
name = b""
if major == 0:
    nb, m2 = Buf(0, None), OM(0)
    if lib.gss_display_name(ctypes.byref(m2), src, ctypes.byref(nb), None) == 0:
        name = ctypes.string_at(nb.value, nb.length)
token = ctypes.string_at(out.value, out.length) if out.length else b""
print(major, minor.value, flags.value, base64.b64encode(name).decode() or "-", base64.b64encode(token).decode() or "-")
`

// GSSAcceptResult is what MIT's acceptor made of a client's token.
type GSSAcceptResult struct {
	Major, Minor uint64 // GSS status codes: Major 0 is GSS_S_COMPLETE
	Flags        uint64 // the context flags it granted (2 = mutual)
	Client       string // the authenticated principal, "alice@REALM"
	Token        []byte // the output token: SPNEGO NegTokenResp with the AP-REP
}

// GSSAccept hands token to MIT Kerberos's gss_accept_sec_context, as a
// server holding keytab would (squid's helper does the same, but does not
// pass the output token on to the client). It needs python3 and
// libgssapi_krb5.so.2 (krb5-user pulls it in).
func GSSAccept(t testing.TB, kdc *KDC, keytab string, token []byte) GSSAcceptResult {
	t.Helper()
	py := Require(t, "python3", "apt-get install -y python3")
	dir := t.TempDir()
	script := filepath.Join(dir, "gss_accept.py")
	WriteFile(t, script, gssAcceptScript, 0o644)
	cmd := exec.Command(py, script)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+kdc.Krb5Conf, "KRB5_KTNAME=FILE:"+keytab, "KRB5RCACHEDIR="+dir)
	cmd.Stdin = strings.NewReader(base64.StdEncoding.EncodeToString(token) + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "libgssapi_krb5") {
			Missing(t, "libgssapi_krb5.so.2 not loadable (install: apt-get install -y libgssapi-krb5-2): "+string(out))
		}
		t.Fatalf("peertest: gss_accept_sec_context: %v\n%s", err, out)
	}
	var r GSSAcceptResult
	var name, tok string
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &r.Major, &r.Minor, &r.Flags, &name, &tok); err != nil {
		t.Fatalf("peertest: gss_accept output %q: %v", out, err)
	}
	if name != "-" {
		b, _ := base64.StdEncoding.DecodeString(name)
		r.Client = string(b)
	}
	if tok != "-" {
		r.Token, _ = base64.StdEncoding.DecodeString(tok)
	}
	return r
}
