package b64

import (
	"bytes"
	"encoding/base64"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sample(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131 + n*7)
	}
	return b
}

func TestEncodeMatchesLibrary(t *testing.T) {
	t.Parallel()
	for n := range 200 {
		src := sample(n)
		want := base64.StdEncoding.EncodeToString(src)
		dst := make([]byte, len(want))
		Encode(dst, src)
		if string(dst) != want {
			t.Fatalf("%d bytes: %q, want %q", n, dst, want)
		}
		if got := AppendEncode([]byte("x:"), src); string(got) != "x:"+want {
			t.Fatalf("AppendEncode %d bytes: %q", n, got)
		}
	}
}

func TestDecodeMatchesLibrary(t *testing.T) {
	t.Parallel()
	for n := range 200 {
		text := []byte(base64.StdEncoding.EncodeToString(sample(n)))
		for _, in := range [][]byte{
			text,
			append(bytes.Clone(text), "QUJD"...),    // data after padding
			append([]byte("QUJDREVG\r\n"), text...), // a line break
			append(append(bytes.Clone(text[:len(text)/2]), '*'), text[len(text)/2:]...), // a bad byte
		} {
			checkDecode(t, in)
		}
	}
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	want := make([]byte, base64.StdEncoding.DecodedLen(len(in)))
	wn, werr := base64.StdEncoding.Decode(want, in)
	got := make([]byte, base64.StdEncoding.DecodedLen(len(in)))
	gn, gerr := Decode(got, in)
	if wn != gn || !bytes.Equal(want[:wn], got[:gn]) || (werr == nil) != (gerr == nil) ||
		(werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("Decode(%q) = %d, %v; the library gives %d, %v", in, gn, gerr, wn, werr)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "QQ==", "QUJDREVGR0hJSktM", "QUJDREVGR0hJSktM\nTU5P", "QUJD*EVGR0hJSktM", "QUJDREVGR0hJS==="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, in)
		// And every payload encodes as the library encodes it.
		want := base64.StdEncoding.EncodeToString(in)
		if got := AppendEncode(nil, in); string(got) != want {
			t.Fatalf("AppendEncode(%x) = %q, want %q", in, got, want)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	src := sample(32 << 10)
	dst := make([]byte, base64.StdEncoding.EncodedLen(len(src)))
	b.SetBytes(int64(len(src)))
	b.Run("b64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			Encode(dst, src)
		}
	})
	b.Run("encoding-base64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			base64.StdEncoding.Encode(dst, src)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	src := sample(32 << 10)
	text := []byte(base64.StdEncoding.EncodeToString(src))
	dst := make([]byte, len(src))
	b.Run("b64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			_, _ = Decode(dst, text)
		}
	})
	b.Run("encoding-base64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			_, _ = base64.StdEncoding.Decode(dst, text)
		}
	})
}
