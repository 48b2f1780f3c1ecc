package bridge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// replaceFile puts data at path by writing a temporary file and renaming
// it over path, as editors and cert-manager do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// servedCert returns the certificate a new TLS connection to addr gets.
func servedCert(t *testing.T, addr string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestCertReloader: a new pair written over the files (by rename) is
// served to new connections while a connection opened before keeps
// working; Reload picks up a change without the watch; a bad pair is
// logged and the previous one kept.
func TestCertReloader(t *testing.T) {
	t.Parallel()
	a, b, c := peertest.SelfSigned(t), peertest.SelfSigned(t), peertest.SelfSigned(t)
	pool := x509.NewCertPool()
	for _, ct := range []*peertest.Cert{a, b, c} {
		pool.AddCert(ct.TLS.Leaf)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	replaceFile(t, certFile, readFile(t, a.CertFile))
	replaceFile(t, keyFile, readFile(t, a.KeyFile))

	logs := &logBuffer{}
	r, err := bridge.NewCertReloader(certFile, keyFile, slogTo(logs))
	require.NoError(t, err)
	addr, _, _ := proxiedBridge(t, peertest.EchoServer(t), bridge.ListenerOptions{
		TLSConfig: &tls.Config{GetCertificate: r.GetCertificate},
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- r.Watch(watchCtx) }()

	assert.Equal(t, a.TLS.Leaf.SerialNumber, servedCert(t, addr, pool).SerialNumber)
	old, err := dialFrom(ctx, addr, "", nil, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	require.NoError(t, err)
	defer old.CloseNow()
	echoCheck(t, ctx, old, "before")

	// The watch: key first, then certificate (a window with a mismatched
	// pair, which must not be served).
	replaceFile(t, keyFile, readFile(t, b.KeyFile))
	replaceFile(t, certFile, readFile(t, b.CertFile))
	require.Eventually(t, func() bool {
		return servedCert(t, addr, pool).SerialNumber.Cmp(b.TLS.Leaf.SerialNumber) == 0
	}, 10*time.Second, 50*time.Millisecond)
	logs.waitLog(t, "certificate reloaded")
	echoCheck(t, ctx, old, "after the watch")
	stopWatch()
	require.NoError(t, <-watchDone)

	// Reload (what SIGHUP does) with the watch stopped.
	replaceFile(t, certFile, readFile(t, c.PEMFile))
	replaceFile(t, keyFile, readFile(t, c.KeyFile))
	require.NoError(t, r.Reload())
	assert.Equal(t, c.TLS.Leaf.SerialNumber, servedCert(t, addr, pool).SerialNumber)
	assert.Equal(t, c.TLS.Leaf.SerialNumber, r.Certificate().SerialNumber)

	// A bad pair: c's certificate with a's key, then garbage.
	replaceFile(t, keyFile, readFile(t, a.KeyFile))
	require.Error(t, r.Reload())
	replaceFile(t, certFile, []byte("not a certificate"))
	require.Error(t, r.Reload())
	assert.Equal(t, c.TLS.Leaf.SerialNumber, servedCert(t, addr, pool).SerialNumber)
	logs.waitLog(t, "keeping the previous certificate")
	assert.False(t, bytes.Contains([]byte(logs.String()), []byte("PRIVATE KEY")), "no key material in logs")
	echoCheck(t, ctx, old, "after a bad pair")
	require.NoError(t, old.Close(websocket.StatusNormalClosure, ""))
}

func TestCertReloaderBadStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := bridge.NewCertReloader(filepath.Join(dir, "missing.pem"), "", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.pem")
}
