// Serving a TLS certificate that is read again when its files change or
// when asked (SIGHUP in wsbridge), without touching open connections.

package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// certReloadSettle is how long Watch waits after the last file event
// before reading the files: writers (editors, cert-manager, certbot)
// produce several events per update.
const certReloadSettle = 200 * time.Millisecond

// CertReloader serves the certificate and key in two PEM files (they may
// be the same file) through tls.Config.GetCertificate, and reads them
// again on Reload and, while Watch runs, whenever their directories
// change. A pair that fails to load (a half-written file, a key that does
// not match) is logged and the previous one kept. Handshakes already done
// keep their certificate: open connections are never touched. It is safe
// for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	mu                sync.Mutex // serializes loads
}

// NewCertReloader loads the pair once (failing as tls.LoadX509KeyPair
// does, naming the files) and returns the reloader. keyFile may equal
// certFile or be empty (the key is then in certFile). logger nil means
// slog.Default().
func NewCertReloader(certFile, keyFile string, logger *slog.Logger) (*CertReloader, error) {
	if keyFile == "" {
		keyFile = certFile
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: logger}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert.Store(cert)
	return r, nil
}

func (r *CertReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s, key %s: %w", r.certFile, r.keyFile, err)
	}
	return &cert, nil
}

// GetCertificate returns the current certificate; use it as
// tls.Config.GetCertificate (leave Config.Certificates empty).
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// Certificate returns the current certificate's parsed leaf.
func (r *CertReloader) Certificate() *x509.Certificate {
	return r.cert.Load().Leaf
}

// Reload reads the files again. On success new handshakes get the new
// pair (logged when it differs from the old one); on failure the old pair
// stays, the failure is logged and returned.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cert, err := r.load()
	if err != nil {
		r.log.Error("bridge: certificate reload failed, keeping the previous certificate", "err", err)
		return err
	}
	old := r.cert.Swap(cert)
	if bytes.Equal(old.Certificate[0], cert.Certificate[0]) {
		r.log.Debug("bridge: certificate files read again, unchanged", "cert", r.certFile)
		return nil
	}
	r.log.Info("bridge: certificate reloaded", "cert", r.certFile, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// Watch reloads after any change in the directories holding the two files
// (watching directories, not files, catches updates by rename, as editors
// and Kubernetes secret volumes do them) until ctx ends. It returns an
// error only when the watch cannot start (an unsupported file system, the
// inotify limit); ctx's end returns nil.
func (r *CertReloader) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching certificate files: %w", err)
	}
	defer w.Close()
	dirs := map[string]bool{filepath.Dir(r.certFile): true, filepath.Dir(r.keyFile): true}
	for dir := range dirs {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watching certificate directory %s: %w", dir, err)
		}
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			r.log.Debug("bridge: certificate directory changed", "file", ev.Name, "op", ev.Op.String())
			settle.Reset(certReloadSettle)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("bridge: watching certificate files", "err", err)
		case <-settle.C:
			_ = r.Reload()
		}
	}
}
