package negotiate

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FuzzParseAnswer: the proxy's Negotiate answer never panics the parser
// nor Verify, and a parsed answer holds at most one Kerberos message.
func FuzzParseAnswer(f *testing.F) {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	ctime := time.Unix(1700000000, 0).UTC()
	f.Add(apRepAnswer(f, spnego.NegStateAcceptCompleted, key, ctime, 7))
	f.Add(apRepAnswer(f, spnego.NegStateReject, key, ctime, 7))
	f.Add([]byte{0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00})
	f.Add([]byte{0x60, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAnswer(b)
		if err == nil && a.APRep != nil && a.KRBError != nil {
			t.Fatal("an answer with both an AP-REP and an error")
		}
		x := &Context{spn: "HTTP/p", init: &initToken{SessionKey: key, CTime: ctime, Cusec: 7}}
		_ = x.Verify(b)
	})
}

// FuzzParseCCache: any file content gives a cache or an error, never a
// panic or an allocation beyond the input's size.
func FuzzParseCCache(f *testing.F) {
	f.Add(ccacheFile("alice", "CORP.EXAMPLE", time.Unix(2000000000, 0)))
	f.Add([]byte{5, 3, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{5, 4, 0, 12, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCCache(b)
		if err != nil {
			return
		}
		for _, cred := range c.Credentials {
			if len(cred.Ticket) > len(b) || len(cred.Addresses) > len(b) || len(cred.AuthData) > len(b) {
				t.Fatal("parsed more than the input holds")
			}
		}
		_, _ = findTGT(c, c.DefaultPrincipal.Realm)
	})
}

// FuzzParseCCacheName: every KRB5CCNAME value is a readable location or a
// typed error; an error for a named type says what to do.
func FuzzParseCCacheName(f *testing.F) {
	for _, s := range []string{"FILE:/tmp/krb5cc_0", "/tmp/x", "DIR::/a/b", "DIR:/a", "KCM:", "KEYRING:persistent:0", "C:\\x", ":", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := parseCCacheName(s)
		if err == nil {
			if (loc.Type != "FILE" && loc.Type != "DIR") || loc.Path == "" {
				t.Fatalf("%q: %+v", s, loc)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%q: untyped error %v", s, err)
		}
		if e.Kind == KindUnsupportedCache && !strings.Contains(err.Error(), "kinit") {
			t.Fatalf("%q: %v does not say what to do", s, err)
		}
	})
}

// FuzzDecodeToken: challenge parameters decode or fail within the limit,
// and user names split without loss.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{"", "YWJj", "YWI=", " YWI ", "====", `CORP\alice`, "a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeToken(s)
		if err == nil && len(b) > maxTokenSize {
			t.Fatalf("decoded %d bytes", len(b))
		}
		d, n := SplitWindowsUser(s)
		if strings.Contains(s, `\`) && d+`\`+n != s || !strings.Contains(s, `\`) && (d != "" || n != s) {
			t.Fatalf("SplitWindowsUser(%q) = %q, %q", s, d, n)
		}
	})
}
