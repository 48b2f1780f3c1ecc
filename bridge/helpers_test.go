package bridge_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"testing"
)

func encodeB64(p []byte) string             { return base64.StdEncoding.EncodeToString(p) }
func decodeB64(p []byte) ([]byte, error)    { return base64.StdEncoding.DecodeString(string(p)) }
func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func slog0(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func tlsConfigNoRoots() *tls.Config { return &tls.Config{RootCAs: x509.NewCertPool()} }
