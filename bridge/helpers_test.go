package bridge_test

import (
	"bufio"
	"encoding/base64"
	"io"
)

func encodeB64(p []byte) string             { return base64.StdEncoding.EncodeToString(p) }
func decodeB64(p []byte) ([]byte, error)    { return base64.StdEncoding.DecodeString(string(p)) }
func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
