package bridge

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzBase64Stream: decoding a text in pieces split anywhere gives the
// bytes, and the verdict, of decoding it whole with the standard library.
func FuzzBase64Stream(f *testing.F) {
	for _, seed := range []string{"", "QQ==", "QUJD", "QUJDRA==", "QUJD\r\nRA==", "QQ==QUJD", "QUJ", "Q===", "****", "QUJDREVG\n"} {
		f.Add([]byte(seed), []byte{1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, text, cuts []byte) {
		want, wantErr := base64.StdEncoding.DecodeString(string(text))

		var s base64Stream
		var got []byte
		var err error
		rest := text
		for i := 0; err == nil; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(n, int(cuts[i]))
			}
			final := n == len(rest)
			buf := make([]byte, 4+n)
			k := s.prefix(buf)
			copy(buf[k:], rest[:n])
			rest = rest[n:]
			dst := make([]byte, (k+n)/4*3)
			var m int
			m, err = s.decode(dst, buf[:k+n], final)
			got = append(got, dst[:m]...)
			if final {
				break
			}
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("text %q cut at %v: streaming error %v, whole-text error %v", text, cuts, err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("text %q cut at %v: streaming gave %x, whole text %x", text, cuts, got, want)
		}
	})
}
