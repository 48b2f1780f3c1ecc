package hixie_test

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wsproxy/wsproxy/internal/hixie"
)

// The two worked examples of draft-hixie-thewebsocketprotocol-76: section
// 1.3 (the opening handshake overview) and section 5.2 (the server's
// answer, "fQJ,fN/4F4!~K~MH"). In the second, key1's digits 1868545188 over
// 12 spaces give 155712099 and key2's 1733470270 over 10 give 173347027.
var draftExamples = []struct {
	name             string
	key1, key2, key3 string
	answer           string
}{
	{"section 1.3", "4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00", "^n:ds[4U", "8jKS'y:G*Co,Wxa-"},
	{"section 5.2", "18x 6]8vM;54 *(5:  {   U1]8  z [  8", "1_ tx7X d  <  nw  334J702) 7]o}` 0", "Tm[K T2u", "fQJ,fN/4F4!~K~MH"},
}

func TestAnswer76DraftExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range draftExamples {
		got, err := hixie.Answer76(ex.key1, ex.key2, []byte(ex.key3))
		if err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		if string(got[:]) != ex.answer {
			t.Errorf("%s: answer %q, want %q", ex.name, got[:], ex.answer)
		}
	}
}

func TestAnswer76BadKeys(t *testing.T) {
	t.Parallel()
	good := "18x 6]8vM;54 *(5:  {   U1]8  z [  8"
	for _, tc := range []struct{ name, key string }{
		{"empty", ""},
		{"no spaces", "1868545188"},
		{"no digits", "ab cd ef"},
		{"not a multiple of the spaces", "1 2 3"},            // 123 / 2
		{"non-integer quotient", " 7 7"},                     // 77 / 2
		{"overflows 32 bits", "8589934592 "},                 // 2^33 / 1
		{"overflows 64 bits", "99999999999999999999999999 "}, // too many digits
	} {
		if _, err := hixie.Answer76(tc.key, good, []byte("12345678")); !errors.Is(err, hixie.ErrBadHandshake) {
			t.Errorf("key1 %s (%q): err %v, want ErrBadHandshake", tc.name, tc.key, err)
		}
		if _, err := hixie.Answer76(good, tc.key, []byte("12345678")); !errors.Is(err, hixie.ErrBadHandshake) {
			t.Errorf("key2 %s (%q): err %v, want ErrBadHandshake", tc.name, tc.key, err)
		}
	}
	if _, err := hixie.Answer76(good, good, []byte("1234567")); !errors.Is(err, hixie.ErrBadHandshake) {
		t.Errorf("7-byte key3: err %v, want ErrBadHandshake", err)
	}
}

func readRequest(t *testing.T, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return r
}

func TestDetect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header string
		want   hixie.Version
	}{
		{"hixie-76", "Upgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key1: 1 1\r\nSec-WebSocket-Key2: 2 2\r\n", hixie.Hixie76},
		{"hixie-76 one key only", "Upgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key2: 2 2\r\n", hixie.Hixie76},
		{"hixie-75", "Upgrade: WebSocket\r\nConnection: Upgrade\r\n", hixie.Hixie75},
		{"hixie-75 lower case, token list", "Upgrade: websocket\r\nConnection: keep-alive, upgrade\r\n", hixie.Hixie75},
		{"rfc 6455", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", hixie.NotHixie},
		{"version only", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n", hixie.NotHixie},
		{"plain GET", "Accept: */*\r\n", hixie.NotHixie},
		{"upgrade without connection", "Upgrade: WebSocket\r\n", hixie.NotHixie},
		{"h2c", "Upgrade: h2c\r\nConnection: Upgrade\r\n", hixie.NotHixie},
	} {
		r := readRequest(t, "GET / HTTP/1.1\r\nHost: h\r\n"+tc.header+"\r\n")
		if got := hixie.Detect(r.Header); got != tc.want {
			t.Errorf("%s: Detect = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestResponse76Exact(t *testing.T) {
	t.Parallel()
	r := readRequest(t, "GET /demo?token=a HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\n"+
		"Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nOrigin: http://example.com\r\n\r\n^n:ds[4U")
	hs, err := hixie.Parse(r, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hs.AppendResponse(nil, []byte("^n:ds[4U"))
	if err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 101 WebSocket Protocol Handshake\r\n" +
		"Upgrade: WebSocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Origin: http://example.com\r\n" +
		"Sec-WebSocket-Location: ws://example.com/demo?token=a\r\n" +
		"Sec-WebSocket-Protocol: sample\r\n" +
		"\r\n" +
		"8jKS'y:G*Co,Wxa-"
	if string(got) != want {
		t.Errorf("response\n%q\nwant\n%q", got, want)
	}

	hs.Protocol = ""
	got, _ = hs.AppendResponse(nil, []byte("^n:ds[4U"))
	if strings.Contains(string(got), "WebSocket-Protocol:") {
		t.Errorf("cleared protocol still answered: %q", got)
	}
	if _, err := hs.AppendResponse(nil, []byte("short")); err == nil {
		t.Error("short key3 accepted")
	}
}

func TestResponse75Exact(t *testing.T) {
	t.Parallel()
	r := readRequest(t, "GET /websockify HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"+
		"Host: [::1]:6080\r\nOrigin: https://vnc.example\r\nWebSocket-Protocol: base64\r\n\r\n")
	hs, err := hixie.Parse(r, true)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Version != hixie.Hixie75 {
		t.Fatalf("version %v", hs.Version)
	}
	got, err := hs.AppendResponse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 101 Web Socket Protocol Handshake\r\n" +
		"Upgrade: WebSocket\r\n" +
		"Connection: Upgrade\r\n" +
		"WebSocket-Origin: https://vnc.example\r\n" +
		"WebSocket-Location: wss://[::1]:6080/websockify\r\n" +
		"WebSocket-Protocol: base64\r\n" +
		"\r\n"
	if string(got) != want {
		t.Errorf("response\n%q\nwant\n%q", got, want)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	const up = "Upgrade: WebSocket\r\nConnection: Upgrade\r\n"
	for _, tc := range []struct{ name, raw string }{
		{"POST", "POST / HTTP/1.1\r\nHost: h\r\n" + up + "Content-Length: 0\r\n\r\n"},
		{"key1 without spaces", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Key1: 12345\r\nSec-WebSocket-Key2: 1 2\r\n\r\n"},
		{"key2 missing", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Key1: 1 2\r\n\r\n"},
		{"non-integer quotient", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Key1: 1 2\r\nSec-WebSocket-Key2: 1 2 3\r\n\r\n"},
		{"rfc 6455", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Version: 13\r\n\r\n"},
		{"no host", "GET / HTTP/1.0\r\n" + up + "\r\n"},
	} {
		r := readRequest(t, tc.raw)
		if _, err := hixie.Parse(r, false); !errors.Is(err, hixie.ErrBadHandshake) {
			t.Errorf("%s: err %v, want ErrBadHandshake", tc.name, err)
		}
	}
}

func TestReadKey3FromBufferedReader(t *testing.T) {
	t.Parallel()
	br := bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\n" +
		"Upgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key1: 1 1\r\nSec-WebSocket-Key2: 2 2\r\n\r\nTm[K T2u\x00aGk=\xff"))
	r, err := http.ReadRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hixie.Parse(r, false); err != nil {
		t.Fatal(err)
	}
	key3, err := hixie.ReadKey3(br)
	if err != nil || string(key3) != "Tm[K T2u" {
		t.Fatalf("key3 %q, %v", key3, err)
	}
	if _, err := hixie.ReadKey3(strings.NewReader("short")); err == nil {
		t.Error("short key3 read without error")
	}
}

func FuzzHandshake76(f *testing.F) {
	for _, ex := range draftExamples {
		f.Add(ex.key1, ex.key2, []byte(ex.key3))
	}
	f.Add(" ", "0 ", []byte("\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, key1, key2 string, key3 []byte) {
		a, err := hixie.Answer76(key1, key2, key3)
		if err != nil {
			if !errors.Is(err, hixie.ErrBadHandshake) {
				t.Fatalf("error %v does not wrap ErrBadHandshake", err)
			}
			return
		}
		if len(key3) != hixie.Key3Len {
			t.Fatalf("accepted key3 of %d bytes", len(key3))
		}
		b, _ := hixie.Answer76(key1, key2, key3)
		if a != b {
			t.Fatal("answer not deterministic")
		}
	})
}
