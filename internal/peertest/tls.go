package peertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a self-signed certificate for loopback peers.
type Cert struct {
	PEMFile  string         // certificate then private key, as websockify's --cert wants
	CertFile string         // certificate only
	KeyFile  string         // private key only
	Pool     *x509.CertPool // trusts the certificate
	TLS      tls.Certificate
}

// SelfSigned makes a certificate valid for localhost, 127.0.0.1, ::1 and the
// given extra hosts (names or IP addresses), written into a temporary folder.
func SelfSigned(t testing.TB, hosts ...string) *Cert {
	t.Helper()
	c, err := GenerateCert(t.TempDir(), hosts...)
	if err != nil {
		t.Fatalf("peertest: certificate: %v", err)
	}
	return c
}

// GenerateCert is SelfSigned outside tests: it writes the files into dir.
func GenerateCert(dir string, hosts ...string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "wsproxy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	c := &Cert{
		PEMFile:  filepath.Join(dir, "self.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
		Pool:     x509.NewCertPool(),
	}
	for path, data := range map[string][]byte{c.PEMFile: append(append([]byte{}, certPEM...), keyPEM...), c.CertFile: certPEM, c.KeyFile: keyPEM} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
	}
	parsed, _ := x509.ParseCertificate(der)
	c.Pool.AddCert(parsed)
	c.TLS, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// RoutableHost returns an IPv4 address of this machine that is not a
// loopback address, for tests where loopback would be treated specially
// (NO_PROXY logic sends loopback direct). It ends the test through Missing
// when the machine has none.
func RoutableHost(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	Missing(t, "no non-loopback IPv4 address on this machine")
	return ""
}
