// Package hixie speaks the server side of the pre-RFC WebSocket protocol:
// draft-hixie-thewebsocketprotocol-75 and -76 (also published as
// draft-ietf-hybi-thewebsocketprotocol-00), as still spoken by old browsers,
// Flash-based WebSocket emulators and embedded clients.
//
// It has three parts, all free of I/O policy so the bridge decides deadlines
// and logging:
//
//   - the opening handshake: Detect tells a legacy request from an RFC 6455
//     one, Parse validates it (the Hixie-76 keys included) before the
//     connection is hijacked, and Handshake.AppendResponse writes the raw
//     101 answer, with the 16-byte MD5 challenge answer for Hixie-76;
//   - the framing: Decoder reads 0x00 base64 0xFF text frames as a stream of
//     decoded bytes with a per-frame size cap and bounded memory, and
//     Encoder writes them, optionally with sequence numbers;
//   - sequence numbers (the "seq_num" query flag): Seq counts frames sent to
//     the client and prefixes each with "<n>:".
//
// Only text frames carrying base64 are supported, which is what websockify
// and noVNC used over the legacy protocol; length-prefixed binary frames
// (a type byte with the high bit set) are rejected as stray bytes, except
// the closing handshake 0xFF 0x00.
package hixie

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Version is the legacy protocol a request speaks.
type Version int

const (
	// NotHixie is an RFC 6455 (or hybi-07 and later) request, or no
	// WebSocket request at all.
	NotHixie Version = iota
	// Hixie75 is draft-hixie-thewebsocketprotocol-75: no keys, headers
	// without the Sec- prefix, no closing handshake.
	Hixie75
	// Hixie76 is draft-hixie-thewebsocketprotocol-76 (hybi-00): two keys in
	// the header, eight key bytes after it, an MD5 answer after the response
	// header, and the closing handshake 0xFF 0x00.
	Hixie76
)

func (v Version) String() string {
	switch v {
	case Hixie75:
		return "hixie-75"
	case Hixie76:
		return "hixie-76"
	default:
		return "rfc6455"
	}
}

// Key3Len is the number of key bytes a Hixie-76 client sends after its
// request header (the request has no Content-Length for them).
const Key3Len = 8

// AnswerLen is the length of the Hixie-76 challenge answer that follows the
// response header.
const AnswerLen = 16

// ErrBadHandshake is wrapped by every error Parse and Answer76 return; a
// server answers such requests with 400 Bad Request.
var ErrBadHandshake = errors.New("bad legacy WebSocket handshake")

// Detect reports which legacy protocol the request header speaks, or
// NotHixie. A request is legacy when it asks to upgrade to WebSocket and
// carries neither Sec-WebSocket-Key nor Sec-WebSocket-Version (which every
// RFC 6455 client sends); it is Hixie-76 when it carries
// Sec-WebSocket-Key1 or Sec-WebSocket-Key2, Hixie-75 otherwise.
func Detect(h http.Header) Version {
	if !strings.EqualFold(strings.TrimSpace(h.Get("Upgrade")), "websocket") {
		return NotHixie
	}
	if !headerHasToken(h, "Connection", "upgrade") {
		return NotHixie
	}
	if h.Get("Sec-WebSocket-Key") != "" || h.Get("Sec-WebSocket-Version") != "" {
		return NotHixie
	}
	if _, ok := h["Sec-Websocket-Key1"]; ok {
		return Hixie76
	}
	if _, ok := h["Sec-Websocket-Key2"]; ok {
		return Hixie76
	}
	return Hixie75
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Handshake is a validated legacy opening handshake, ready to be answered.
// Fields may be changed before AppendResponse (for example Protocol, to
// refuse an offered subprotocol by clearing it).
type Handshake struct {
	Version Version
	// Origin is the request's Origin header, echoed in (Sec-)WebSocket-Origin.
	// Empty when the client sent none; the header is then omitted.
	Origin string
	// Location is the URL the client connected to, echoed in
	// (Sec-)WebSocket-Location: ws:// or wss://, the Host header, the path
	// and the query.
	Location string
	// Protocol is the subprotocol the client offered in
	// Sec-WebSocket-Protocol (Hixie-76) or WebSocket-Protocol (Hixie-75),
	// echoed when not empty. The legacy protocol offers a single value.
	Protocol string

	key1, key2 uint32 // Hixie-76: each key's digits divided by its spaces
}

// Parse validates a legacy request detected by Detect and prepares its
// answer. secure selects the wss scheme for Location (the connection came
// over TLS). It fails, wrapping ErrBadHandshake, when the method is not GET,
// Host is missing, a header value holds control characters, or (Hixie-76) a
// key is missing, has no spaces, has no digits, overflows, or its number is
// not an integral multiple of its spaces or does not fit 32 bits.
// Parse reads only the header: the eight key bytes of Hixie-76 follow it on
// the connection and are passed to AppendResponse.
func Parse(r *http.Request, secure bool) (*Handshake, error) {
	v := Detect(r.Header)
	if v == NotHixie {
		return nil, fmt.Errorf("%w: not a Hixie-75/76 upgrade request", ErrBadHandshake)
	}
	if r.Method != http.MethodGet {
		return nil, fmt.Errorf("%w: method %s, want GET", ErrBadHandshake, r.Method)
	}
	if r.Host == "" {
		return nil, fmt.Errorf("%w: no Host header", ErrBadHandshake)
	}
	hs := &Handshake{Version: v, Origin: r.Header.Get("Origin")}
	if v == Hixie76 {
		hs.Protocol = r.Header.Get("Sec-WebSocket-Protocol")
	} else {
		hs.Protocol = r.Header.Get("WebSocket-Protocol")
	}
	scheme := "ws://"
	if secure {
		scheme = "wss://"
	}
	hs.Location = scheme + r.Host + r.URL.RequestURI()
	for name, val := range map[string]string{"Origin": hs.Origin, "Host": r.Host, "protocol": hs.Protocol, "path": hs.Location} {
		if strings.ContainsFunc(val, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return nil, fmt.Errorf("%w: control character in %s", ErrBadHandshake, name)
		}
	}
	if v == Hixie76 {
		var err error
		if hs.key1, err = parseKey(r.Header.Get("Sec-WebSocket-Key1")); err != nil {
			return nil, fmt.Errorf("%w: Sec-WebSocket-Key1: %v", ErrBadHandshake, err)
		}
		if hs.key2, err = parseKey(r.Header.Get("Sec-WebSocket-Key2")); err != nil {
			return nil, fmt.Errorf("%w: Sec-WebSocket-Key2: %v", ErrBadHandshake, err)
		}
	}
	return hs, nil
}

// parseKey turns a Hixie-76 key into its 32-bit number: the decimal digits
// in the key, read as one number, divided by the number of spaces.
func parseKey(key string) (uint32, error) {
	if key == "" {
		return 0, errors.New("missing")
	}
	var num uint64
	var digits, spaces int
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= '0' && c <= '9':
			digits++
			if num > (1<<63)/10 {
				return 0, errors.New("number too large")
			}
			num = num*10 + uint64(c-'0')
		case c == ' ':
			spaces++
		}
	}
	if digits == 0 {
		return 0, errors.New("no digits")
	}
	if spaces == 0 {
		return 0, errors.New("no spaces")
	}
	if num%uint64(spaces) != 0 {
		return 0, fmt.Errorf("%d is not a multiple of its %d spaces", num, spaces)
	}
	q := num / uint64(spaces)
	if q > 0xFFFFFFFF {
		return 0, fmt.Errorf("%d / %d does not fit 32 bits", num, spaces)
	}
	return uint32(q), nil
}

// Answer76 computes the Hixie-76 challenge answer: the MD5 digest of key1's
// and key2's numbers as big-endian 32-bit integers followed by the eight
// bytes of key3. It fails, wrapping ErrBadHandshake, under the same key
// rules as Parse.
func Answer76(key1, key2 string, key3 []byte) ([AnswerLen]byte, error) {
	k1, err := parseKey(key1)
	if err != nil {
		return [AnswerLen]byte{}, fmt.Errorf("%w: key1: %v", ErrBadHandshake, err)
	}
	k2, err := parseKey(key2)
	if err != nil {
		return [AnswerLen]byte{}, fmt.Errorf("%w: key2: %v", ErrBadHandshake, err)
	}
	if len(key3) != Key3Len {
		return [AnswerLen]byte{}, fmt.Errorf("%w: key3 has %d bytes, want %d", ErrBadHandshake, len(key3), Key3Len)
	}
	return answer(k1, k2, key3), nil
}

func answer(k1, k2 uint32, key3 []byte) [AnswerLen]byte {
	var challenge [8 + Key3Len]byte
	binary.BigEndian.PutUint32(challenge[0:4], k1)
	binary.BigEndian.PutUint32(challenge[4:8], k2)
	copy(challenge[8:], key3)
	return md5.Sum(challenge[:])
}

// ReadKey3 reads the eight key bytes a Hixie-76 client sends after its
// request header. r is typically the buffered reader of a hijacked
// connection, which may already hold them; the caller sets a deadline.
func ReadKey3(r io.Reader) ([]byte, error) {
	key3 := make([]byte, Key3Len)
	if _, err := io.ReadFull(r, key3); err != nil {
		return nil, fmt.Errorf("read Hixie-76 key3: %w", err)
	}
	return key3, nil
}

// AppendResponse appends the complete 101 answer to dst: the status line,
// the headers and, for Hixie-76, the 16-byte challenge answer computed from
// key3 (ignored for Hixie-75). It fails only when a Hixie-76 key3 is not
// eight bytes long.
func (hs *Handshake) AppendResponse(dst, key3 []byte) ([]byte, error) {
	prefix := ""
	if hs.Version == Hixie76 {
		if len(key3) != Key3Len {
			return dst, fmt.Errorf("%w: key3 has %d bytes, want %d", ErrBadHandshake, len(key3), Key3Len)
		}
		prefix = "Sec-"
		dst = append(dst, "HTTP/1.1 101 WebSocket Protocol Handshake\r\n"...)
	} else {
		dst = append(dst, "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"...)
	}
	dst = append(dst, "Upgrade: WebSocket\r\nConnection: Upgrade\r\n"...)
	if hs.Origin != "" {
		dst = append(dst, prefix+"WebSocket-Origin: "+hs.Origin+"\r\n"...)
	}
	dst = append(dst, prefix+"WebSocket-Location: "+hs.Location+"\r\n"...)
	if hs.Protocol != "" {
		dst = append(dst, prefix+"WebSocket-Protocol: "+hs.Protocol+"\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if hs.Version == Hixie76 {
		a := answer(hs.key1, hs.key2, key3)
		dst = append(dst, a[:]...)
	}
	return dst, nil
}
