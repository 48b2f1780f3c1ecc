package bridge

import (
	"bytes"
	"errors"

	"github.com/wsproxy/wsproxy/internal/b64"
)

// base64Stream decodes the base64 text of one message as it arrives in
// pieces of any size, accepting exactly what base64.StdEncoding.Decode
// accepts for the whole text (b64.Decode has its rules): padded groups, CR and LF anywhere (skipped),
// nothing after the padding. The zero value starts a message.
type base64Stream struct {
	carry  [4]byte // characters of a group split across pieces
	ncarry int
	padded bool // the text has ended with padding
}

// prefix copies the characters carried from the previous piece to the
// start of buf, which the caller fills with the next piece after them,
// and returns their count.
func (s *base64Stream) prefix(buf []byte) int { return copy(buf, s.carry[:s.ncarry]) }

// decode decodes text (the carried prefix and the next piece) into dst,
// which must hold len(text)/4*3 bytes, and carries an incomplete last
// group to the next call. final says the message ends with this piece:
// an incomplete group is then an error. text may be modified.
func (s *base64Stream) decode(dst, text []byte, final bool) (int, error) {
	if bytes.IndexByte(text, '\n') >= 0 || bytes.IndexByte(text, '\r') >= 0 {
		text = dropNewlines(text)
	}
	whole := len(text) / 4 * 4
	if final && whole != len(text) {
		return 0, errors.New("message length is not a multiple of 4")
	}
	if s.padded && len(text) > 0 {
		return 0, errors.New("data after padding")
	}
	n, err := b64.Decode(dst, text[:whole])
	if err != nil {
		return 0, err
	}
	if whole > 0 && text[whole-1] == '=' {
		s.padded = true
	}
	s.ncarry = copy(s.carry[:], text[whole:])
	return n, nil
}

// dropNewlines removes CR and LF from b in place.
func dropNewlines(b []byte) []byte {
	out := b[:0]
	for _, ch := range b {
		if ch != '\r' && ch != '\n' {
			out = append(out, ch)
		}
	}
	return out
}
