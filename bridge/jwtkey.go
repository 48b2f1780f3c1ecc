package bridge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// jwtKey is a key read for JWTTokens: what verifies signatures, what
// decrypts encrypted tokens (nil when the key cannot: a public key), and
// the algorithms each is allowed with, fixed by the key's type so that a
// token cannot choose HS256 with an RSA public key as its secret.
type jwtKey struct {
	kind    string // for error messages: "RSA", "EC P-256", "Ed25519", "symmetric"
	verify  any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	methods []string

	decrypt     any // []byte, *rsa.PrivateKey, *ecdsa.PrivateKey or nil
	keyAlgs     []jose.KeyAlgorithm
	contentEncs []jose.ContentEncryption
}

// jweContentEncs are the content encryptions accepted in encrypted tokens:
// all of RFC 7518's.
var jweContentEncs = []jose.ContentEncryption{
	jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512,
	jose.A128GCM, jose.A192GCM, jose.A256GCM,
}

// parseJWTKeyFile reads a key file as websockify's JWTTokenApi does: PEM
// data is an asymmetric key (a public key, a certificate, or a private
// key, whose public half verifies and whose private half decrypts);
// anything else is a symmetric key written base64url-encoded, as a JWK
// "k" value (white space around it and "=" padding are ignored, and the
// standard base64 alphabet is accepted too, as Python's decoder does).
// Unlike websockify, a PEM file without a usable key is an error rather
// than being taken as a symmetric key: its text is public.
func parseJWTKeyFile(data []byte) (*jwtKey, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return parsePEMKey(trimmed)
	}
	secret, err := decodeJWKSecret(string(trimmed))
	if err != nil {
		return nil, err
	}
	return jwtKeyFor(secret)
}

// decodeJWKSecret decodes a JWK "k" value.
func decodeJWKSecret(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, errors.New("bridge: JWT key: empty symmetric key (want the key base64url-encoded, or a PEM public key)")
	}
	enc := base64.RawURLEncoding
	if strings.ContainsAny(s, "+/") {
		enc = base64.RawStdEncoding
	}
	secret, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bridge: JWT key: not PEM and not a base64url symmetric key: %w", err)
	}
	return secret, nil
}

// parsePEMKey returns the first key in PEM data; "EC PARAMETERS" blocks,
// which openssl writes before an EC private key, are skipped.
func parsePEMKey(data []byte) (*jwtKey, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("bridge: JWT key: PEM data holds no key")
		}
		key, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("bridge: JWT key: PEM %q: %w", block.Type, err)
		}
		if key != nil {
			return jwtKeyFor(key)
		}
	}
}

// parsePEMBlock returns the key in one block, nil for blocks to skip.
func parsePEMBlock(b *pem.Block) (any, error) {
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "EC PARAMETERS":
		return nil, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("encrypted private keys are not supported (give the public key)")
	default:
		return nil, errors.New("not a key block")
	}
}

// jwtKeyFor fixes the algorithms a key may be used with.
func jwtKeyFor(key any) (*jwtKey, error) {
	switch k := key.(type) {
	case []byte:
		if len(k) == 0 {
			return nil, errors.New("bridge: JWT key: empty symmetric key")
		}
		return &jwtKey{kind: "symmetric", verify: k, methods: []string{"HS256", "HS384", "HS512"},
			decrypt: k, contentEncs: jweContentEncs, keyAlgs: []jose.KeyAlgorithm{
				jose.DIRECT, jose.A128KW, jose.A192KW, jose.A256KW,
				jose.A128GCMKW, jose.A192GCMKW, jose.A256GCMKW,
			}}, nil
	case *rsa.PublicKey:
		return &jwtKey{kind: "RSA", verify: k, methods: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}, nil
	case *rsa.PrivateKey:
		j, _ := jwtKeyFor(&k.PublicKey)
		j.decrypt, j.contentEncs = k, jweContentEncs
		j.keyAlgs = []jose.KeyAlgorithm{jose.RSA_OAEP, jose.RSA_OAEP_256}
		return j, nil
	case *ecdsa.PublicKey:
		method := map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384", elliptic.P521(): "ES512"}[k.Curve]
		if method == "" {
			return nil, fmt.Errorf("bridge: JWT key: EC curve %s has no JWS algorithm", k.Curve.Params().Name)
		}
		return &jwtKey{kind: "EC " + k.Curve.Params().Name, verify: k, methods: []string{method}}, nil
	case *ecdsa.PrivateKey:
		j, err := jwtKeyFor(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		j.decrypt, j.contentEncs = k, jweContentEncs
		j.keyAlgs = []jose.KeyAlgorithm{jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW}
		return j, nil
	case ed25519.PublicKey:
		return &jwtKey{kind: "Ed25519", verify: k, methods: []string{"EdDSA"}}, nil
	case ed25519.PrivateKey:
		return jwtKeyFor(k.Public())
	default:
		return nil, fmt.Errorf("bridge: JWT key: unsupported key type %T", key)
	}
}
