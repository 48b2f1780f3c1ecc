package bridge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsproxy/wsproxy/bridge"
)

func encodeB64(p []byte) string             { return base64.StdEncoding.EncodeToString(p) }
func decodeB64(p []byte) ([]byte, error)    { return base64.StdEncoding.DecodeString(string(p)) }
func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func slog0(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func tlsConfigNoRoots() *tls.Config { return &tls.Config{RootCAs: x509.NewCertPool()} }

func serveB(b *testing.B, h *bridge.Handler) string {
	srv := httptest.NewServer(h)
	b.Cleanup(func() {
		srv.Close()
		_ = h.Shutdown(context.Background())
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}
