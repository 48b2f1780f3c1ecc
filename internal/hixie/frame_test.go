package hixie_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/wsproxy/wsproxy/internal/hixie"
)

func frame(payload string) string {
	return "\x00" + base64.StdEncoding.EncodeToString([]byte(payload)) + "\xff"
}

type decodeCase struct {
	name    string
	in      string
	max     int
	want    string // decoded bytes before the end or error
	wantErr error  // io.EOF for a clean end
	closed  bool   // the closing handshake was seen
}

func (c decodeCase) String() string { return fmt.Sprintf("%s (in %q, max %d)", c.name, c.in, c.max) }

var decodeCases = []decodeCase{
	{name: "one frame", in: frame("hello"), want: "hello", wantErr: io.EOF},
	{name: "many frames", in: frame("a") + frame("bc") + frame("def") + frame("ghij"), want: "abcdefghij", wantErr: io.EOF},
	{name: "empty frame", in: "\x00\xff", want: "", wantErr: io.EOF},
	{name: "empty frames around data", in: "\x00\xff" + frame("x") + "\x00\xff\x00\xff" + frame("y"), want: "xy", wantErr: io.EOF},
	{name: "binary payload", in: frame("\x00\xff\x80\n\r'\\"), want: "\x00\xff\x80\n\r'\\", wantErr: io.EOF},
	{name: "close handshake", in: frame("bye") + "\xff\x00", want: "bye", wantErr: io.EOF, closed: true},
	{name: "bytes after close are not read", in: frame("a") + "\xff\x00" + "garbage", want: "a", wantErr: io.EOF, closed: true},
	{name: "nothing", in: "", wantErr: io.EOF},
	{name: "at the limit", in: frame("12345"), max: 5, want: "12345", wantErr: io.EOF},
	{name: "over the limit", in: frame("123456"), max: 5, want: "123", wantErr: hixie.ErrFrameTooLarge},
	{name: "limit is per frame", in: frame("12345") + frame("12345"), max: 5, want: "1234512345", wantErr: io.EOF},
	{name: "over the limit in a long frame", in: frame(strings.Repeat("z", 100)), max: 10, want: "zzzzzzzzz", wantErr: hixie.ErrFrameTooLarge},
	{name: "bad base64 byte", in: "\x00aGk*\xff", wantErr: hixie.ErrBadBase64},
	{name: "newline inside base64", in: "\x00aG\nk=\xff", wantErr: hixie.ErrBadBase64},
	{name: "truncated group", in: "\x00aGk\xff", wantErr: hixie.ErrBadBase64},
	{name: "padding in the middle", in: "\x00aQ==aGk=\xff", want: "i", wantErr: hixie.ErrBadBase64},
	{name: "bad padding", in: "\x00a===\xff", wantErr: hixie.ErrBadBase64},
	{name: "frame after a bad one is not read", in: frame("ok") + "\x00!\xff" + frame("no"), want: "ok", wantErr: hixie.ErrBadBase64},
	{name: "stray byte", in: frame("ok") + "A", want: "ok", wantErr: hixie.ErrStrayByte},
	{name: "stray newline", in: "\n" + frame("no"), wantErr: hixie.ErrStrayByte},
	{name: "length-prefixed frame", in: "\xff\x05hello", wantErr: hixie.ErrStrayByte},
	{name: "high-bit type byte", in: "\x80\x01x", wantErr: hixie.ErrStrayByte},
	{name: "eof inside a frame", in: "\x00aGk=", want: "hi", wantErr: io.ErrUnexpectedEOF},
	{name: "eof after 0xff", in: frame("a") + "\xff", want: "a", wantErr: io.ErrUnexpectedEOF},
	{name: "eof after 0x00", in: "\x00", wantErr: io.ErrUnexpectedEOF},
}

// readerKinds feed the same bytes in different read sizes: whole, one byte
// at a time, and split in two at every offset (below).
var readerKinds = map[string]func(string) io.Reader{
	"whole":    func(s string) io.Reader { return strings.NewReader(s) },
	"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
	"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
}

func decodeAll(r io.Reader, max int, bufSize int) (string, *hixie.Decoder, error) {
	d := hixie.NewDecoder(r, max)
	var out bytes.Buffer
	buf := make([]byte, bufSize)
	for i := 0; i < 1e6; i++ {
		n, err := d.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String(), d, err
		}
	}
	return out.String(), d, errors.New("no end")
}

func checkDecode(t *testing.T, how string, tc decodeCase, got string, err error, d *hixie.Decoder) {
	t.Helper()
	if got != tc.want {
		t.Errorf("%v, %s: decoded %q, want %q", tc, how, got, tc.want)
	}
	if !errors.Is(err, tc.wantErr) {
		t.Errorf("%v, %s: err %v, want %v", tc, how, err, tc.wantErr)
	}
	if d.Closed() != tc.closed {
		t.Errorf("%v, %s: Closed() = %v", tc, how, d.Closed())
	}
}

func TestDecoderTable(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		for kind, mk := range readerKinds {
			for _, bufSize := range []int{1, 2, 3, 64} {
				got, d, err := decodeAll(mk(tc.in), tc.max, bufSize)
				checkDecode(t, fmt.Sprintf("%s reads, %d-byte buffer", kind, bufSize), tc, got, err, d)
			}
		}
		for split := 0; split <= len(tc.in); split++ {
			r := io.MultiReader(strings.NewReader(tc.in[:split]), strings.NewReader(tc.in[split:]))
			got, d, err := decodeAll(r, tc.max, 64)
			checkDecode(t, fmt.Sprintf("split at %d", split), tc, got, err, d)
		}
	}
}

func TestDecoderErrorsAreSticky(t *testing.T) {
	t.Parallel()
	d := hixie.NewDecoder(strings.NewReader("\x00*\xff"+frame("later")), 0)
	buf := make([]byte, 10)
	for i := 0; i < 3; i++ {
		if n, err := d.Read(buf); n != 0 || !errors.Is(err, hixie.ErrBadBase64) {
			t.Fatalf("read %d: %d, %v", i, n, err)
		}
	}
}

// TestDecoderOneFramePerRead checks that several frames from one network
// read come out as separate Reads, the boundary the recorder logs.
func TestDecoderOneFramePerRead(t *testing.T) {
	t.Parallel()
	d := hixie.NewDecoder(strings.NewReader(frame("one")+"\x00\xff"+frame("two")+frame("three")), 0)
	buf := make([]byte, 100)
	for _, want := range []string{"one", "two", "three"} {
		n, err := d.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, want)
		}
	}
	if n, err := d.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v", n, err)
	}
	if d.Frames() != 4 {
		t.Errorf("Frames() = %d, want 4", d.Frames())
	}
}

// TestDecoderDoesNotHoldBack checks that a complete frame is returned even
// when the read that carried it ended inside the next frame and no more
// bytes come (websockify waited for a read ending on a boundary).
func TestDecoderDoesNotHoldBack(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() { _, _ = pw.Write([]byte(frame("first") + "\x00c2Vjb25")) }()
	d := hixie.NewDecoder(pr, 0)
	got := make(chan string, 2)
	go func() {
		buf := make([]byte, 100)
		for {
			n, err := d.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	for _, want := range []string{"first", "sec"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q held back", want)
		}
	}
	pw.Close()
	<-got
}

// TestDecoderLargeFrameBoundedMemory streams a frame far larger than the
// read buffer through the decoder and checks it arrives intact.
func TestDecoderLargeFrame(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 100_000) // 1.8 MB
	in := "\x00" + base64.StdEncoding.EncodeToString(payload) + "\xff"
	got, err := io.ReadAll(hixie.NewDecoder(strings.NewReader(in), 2<<20))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("decoded %d bytes, err %v", len(got), err)
	}
	_, err = io.ReadAll(hixie.NewDecoder(strings.NewReader(in), 0))
	if !errors.Is(err, hixie.ErrFrameTooLarge) || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("default limit: err %v", err)
	}
}

func TestEncoder(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := hixie.NewEncoder(&out)
	for _, p := range []string{"hi", "", "\x00\xff"} {
		if n, err := e.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if err := e.WriteClose(); err != nil {
		t.Fatal(err)
	}
	if want := "\x00aGk=\xff\x00\xff\x00AP8=\xff\xff\x00"; out.String() != want {
		t.Errorf("encoded %q, want %q", out.String(), want)
	}
}

func TestEncoderSeqNum(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := hixie.NewEncoder(&out)
	e.Seq = new(hixie.Seq)
	for _, p := range []string{"a", "b", "", "c"} {
		if _, err := e.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 7; i++ {
		_, _ = e.Write([]byte("x"))
	}
	want := "\x000:YQ==\xff\x001:Yg==\xff\x002:\xff\x003:Yw==\xff"
	for i := 4; i < 11; i++ {
		want += fmt.Sprintf("\x00%d:eA==\xff", i)
	}
	if out.String() != want {
		t.Errorf("encoded %q\nwant %q", out.String(), want)
	}
}

// TestEncoderSplitsLargeWrites checks the frame size bound and that the
// pieces decode back to the original.
func TestEncoderSplitsLargeWrites(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, hixie.MaxWritePayload/2)
	var out bytes.Buffer
	if n, err := hixie.NewEncoder(&out).Write(payload); n != len(payload) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if frames := bytes.Count(out.Bytes(), []byte{0xFF}); frames != 4 {
		t.Errorf("%d frames, want 4", frames)
	}
	got, err := io.ReadAll(hixie.NewDecoder(&out, hixie.MaxWritePayload))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
}

func TestEncoderWriteError(t *testing.T) {
	t.Parallel()
	w := &failAfter{n: 1}
	n, err := hixie.NewEncoder(w).Write(make([]byte, hixie.MaxWritePayload+1))
	if n != hixie.MaxWritePayload || err == nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("broken pipe")
	}
	f.n--
	return len(p), nil
}

func TestSeqNumRequested(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		"seq_num": true, "seq_num=1": true, "seq_num=true": true, "token=a&seq_num": true,
		"": false, "seq_num=0": false, "seq_num=no": false, "seqnum=1": false,
	} {
		v, _ := url.ParseQuery(q)
		if got := hixie.SeqNumRequested(v); got != want {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}

func TestAppendPayloadRFC6455(t *testing.T) {
	t.Parallel()
	var s hixie.Seq
	a := hixie.AppendPayload(nil, []byte("hi"), &s)
	b := hixie.AppendPayload(nil, []byte("hi"), &s)
	c := hixie.AppendPayload(nil, []byte("hi"), nil)
	if string(a) != "0:aGk=" || string(b) != "1:aGk=" || string(c) != "aGk=" {
		t.Errorf("got %q %q %q", a, b, c)
	}
}

func FuzzDecoder(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in), uint16(tc.max))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		// Whole and one-byte reads must agree on output and error kind.
		a, errA := io.ReadAll(hixie.NewDecoder(bytes.NewReader(in), int(max)))
		b, errB := io.ReadAll(iotest.OneByteReader(hixie.NewDecoder(iotest.OneByteReader(bytes.NewReader(in)), int(max))))
		if !bytes.Equal(a, b) {
			t.Fatalf("whole reads gave %q, one-byte reads %q", a, b)
		}
		for _, sentinel := range []error{hixie.ErrBadBase64, hixie.ErrFrameTooLarge, hixie.ErrStrayByte, io.ErrUnexpectedEOF} {
			if errors.Is(errA, sentinel) != errors.Is(errB, sentinel) {
				t.Fatalf("errors differ: %v / %v", errA, errB)
			}
		}
		// Re-encoding what was decoded and decoding again is lossless.
		var enc bytes.Buffer
		_, _ = hixie.NewEncoder(&enc).Write(a)
		c, err := io.ReadAll(hixie.NewDecoder(&enc, len(a)+1))
		if err != nil || !bytes.Equal(a, c) {
			t.Fatalf("re-encode round trip: %q, %v", c, err)
		}
	})
}
