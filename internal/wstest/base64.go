// Package wstest holds client-side helpers for the bridge's RFC 6455
// subprotocols, shared by tests and benchmark programs.
package wstest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	"github.com/coder/websocket"

	"github.com/wsproxy/wsproxy/internal/b64"
)

// Base64Conn speaks the base64 subprotocol over c as a byte stream: each
// Write is one text message carrying the base64 of its bytes; Read
// returns the decoded bytes of the text messages received. It reuses its
// buffers, so a benchmark's client costs little CPU besides the codec.
// Read and Write may run concurrently with each other, not with
// themselves.
type Base64Conn struct {
	C       *websocket.Conn
	enc     []byte
	raw     []byte
	dec     []byte
	pending []byte
}

// Write sends p as one text message.
func (s *Base64Conn) Write(p []byte) (int, error) {
	s.enc = b64.AppendEncode(s.enc[:0], p)
	if err := s.C.Write(context.Background(), websocket.MessageText, s.enc); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Read returns decoded bytes of the next messages.
func (s *Base64Conn) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		_, r, err := s.C.Reader(context.Background())
		if err != nil {
			return 0, err
		}
		buf := bytes.NewBuffer(s.raw[:0])
		if _, err := buf.ReadFrom(r); err != nil {
			return 0, err
		}
		s.raw = buf.Bytes()
		if need := base64.StdEncoding.DecodedLen(len(s.raw)); cap(s.dec) < need {
			s.dec = make([]byte, need)
		}
		n, err := b64.Decode(s.dec[:cap(s.dec)], s.raw)
		if err != nil {
			return 0, fmt.Errorf("bad base64 from server: %w", err)
		}
		s.pending = s.dec[:n]
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// Close closes the connection with 1000.
func (s *Base64Conn) Close() error { return s.C.Close(websocket.StatusNormalClosure, "") }
