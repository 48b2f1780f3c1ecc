package negotiate

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestPlanSSPI(t *testing.T) {
	cases := []struct {
		name                       string
		offered                    []string
		host, spn, user, pass      string
		ok                         bool
		pkg, target, domain, uname string
	}{
		{name: "Negotiate preferred over NTLM", offered: []string{"NTLM", "Negotiate", "Basic"}, host: "Proxy.Corp.Example",
			ok: true, pkg: PackageNegotiate, target: "HTTP/proxy.corp.example"},
		{name: "NTLM alone", offered: []string{"ntlm"}, host: "p", ok: true, pkg: PackageNTLM, target: "HTTP/p"},
		{name: "neither", offered: []string{"Basic", "Digest"}, host: "p", ok: false},
		{name: "SPN override drops the realm", offered: []string{"negotiate"}, host: "10.1.1.1", spn: "HTTP/gw.corp.example@CORP.EXAMPLE",
			ok: true, pkg: PackageNegotiate, target: "HTTP/gw.corp.example"},
		{name: "explicit DOMAIN\\user", offered: []string{"Negotiate"}, host: "p", user: `CORP\alice`, pass: "pw",
			ok: true, pkg: PackageNegotiate, target: "HTTP/p", domain: "CORP", uname: "alice"},
		{name: "explicit UPN", offered: []string{"NTLM"}, host: "p", user: "alice@corp.example", pass: "pw",
			ok: true, pkg: PackageNTLM, target: "HTTP/p", uname: "alice@corp.example"},
		{name: "user without password: logon session", offered: []string{"Negotiate"}, host: "p", user: "alice",
			ok: true, pkg: PackageNegotiate, target: "HTTP/p"},
	}
	for _, tc := range cases {
		plan, ok := PlanSSPI(tc.offered, tc.host, tc.spn, tc.user, tc.pass)
		if ok != tc.ok || plan.Package != tc.pkg || plan.TargetName != tc.target || plan.Domain != tc.domain || plan.User != tc.uname {
			t.Errorf("%s: PlanSSPI = %+v, %v", tc.name, plan, ok)
		}
		if tc.uname != "" && plan.Password != tc.pass {
			t.Errorf("%s: password not carried", tc.name)
		}
	}
}

func TestDecodeToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "YWJj", want: []byte("abc")},
		{in: " YWI= ", want: []byte("ab")},
		{in: "YWI", want: []byte("ab")},
		{in: "YW*", bad: true},
		{in: strings.Repeat("A", 200000), bad: true},
	} {
		got, err := DecodeToken(tc.in)
		if (err != nil) != tc.bad || !bytes.Equal(got, tc.want) {
			t.Errorf("DecodeToken(%.20q) = %q, %v", tc.in, got, err)
		}
	}
	if got, _ := DecodeToken(EncodeToken([]byte{0, 1, 2, 0xff})); !bytes.Equal(got, []byte{0, 1, 2, 0xff}) {
		t.Error("EncodeToken/DecodeToken round trip")
	}
}

// TestContextNextIsAlwaysARefusal: Kerberos has one leg, so a 407 after
// the token ends the attempt with ErrRejected, naming the SPN.
func TestContextNextIsAlwaysARefusal(t *testing.T) {
	x := &Context{spn: "HTTP/proxy.example.com"}
	for _, ch := range [][]byte{nil, []byte("garbage")} {
		tok, err := x.Next(ch)
		if tok != nil || !errors.Is(err, ErrRejected) || FallbackAllowed(err) || !strings.Contains(err.Error(), "HTTP/proxy.example.com") {
			t.Errorf("Next(%q) = %q, %v", ch, tok, err)
		}
	}
}
