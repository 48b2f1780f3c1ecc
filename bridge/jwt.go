package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultJWTLeeway is the clock skew JWTTokens allows when checking a
// token's exp and nbf claims, when JWTTokens.Leeway is zero: a token is
// still accepted this long after it expired, and this long before it
// becomes valid, so that clocks a little apart do not refuse it.
const DefaultJWTLeeway = 30 * time.Second

// maxJWTLength bounds a token: even an encrypted token holding an
// RSA-4096 signature is a few kilobytes.
const maxJWTLength = 16 << 10

// maxJWTKeyFile bounds the key file: a PEM certificate chain is far less.
const maxJWTKeyFile = 1 << 20

// JWTTokens is a TokenStore whose tokens are JSON Web Tokens naming their
// own target, compatible with websockify's JWTTokenApi: the token's
// claims "host" (a string) and "port" (a number, or a string of digits)
// are the target; no store is asked. Use it in a TokenResolver, which
// takes the token from ?token= (or the Host) and checks the target
// against its AllowList.
//
// A token is a signed JWT (JWS compact form) or, as websockify accepts, an
// encrypted one (JWE compact form) whose plaintext is a signed JWT, both
// made with the same key. The key decides the algorithms (a token cannot
// choose another): a symmetric key allows HS256, HS384 and HS512; an RSA
// key RS256/384/512 and PS256/384/512; an EC key the ES algorithm of its
// curve (P-256 ES256, P-384 ES384, P-521 ES512); an Ed25519 key EdDSA.
// Encrypted tokens need a key that can decrypt: a symmetric key (dir,
// A128KW.. A256KW, A128GCMKW.. A256GCMKW) or an RSA (RSA-OAEP,
// RSA-OAEP-256) or EC (ECDH-ES, ECDH-ES+A128KW.. A256KW) private key.
// PBES2 (password-based, whose iteration count the sender chooses) and
// RSA1_5 are refused.
//
// The exp and nbf claims are enforced when present, with Leeway; other
// claims are ignored, as websockify does. A refused token (unsigned
// "alg": "none", a wrong key or algorithm, expired, not yet valid,
// malformed, longer than 16 KiB, without a usable host or port) gives a
// *JWTError wrapping ErrInvalidToken, which the Handler answers with 403;
// the error names the reason and never holds the token. A key that cannot
// be read gives another error (502).
type JWTTokens struct {
	// KeyFile is read as websockify's JWTTokenApi reads its
	// --token-source: PEM data is an asymmetric key (a public key, a
	// certificate, or a private key, needed to decrypt encrypted tokens
	// with RSA or EC); anything else is a symmetric key written
	// base64url-encoded, as a JWK "k" value (surrounding white space and
	// "=" padding ignored). A PEM file without a usable key is an error,
	// never taken as a symmetric key. The file is read again when its size
	// or modification time changes, so keys can be rotated while the
	// bridge runs; when the new contents do not parse, the previous key
	// stays in use and the failure is logged.
	KeyFile string
	// Key, when not nil, is used instead of KeyFile: []byte (a symmetric
	// key, raw bytes), *rsa.PublicKey, *ecdsa.PublicKey,
	// ed25519.PublicKey, or *rsa.PrivateKey, *ecdsa.PrivateKey,
	// ed25519.PrivateKey.
	Key any
	// Leeway is the clock skew allowed on exp and nbf; zero means
	// DefaultJWTLeeway, a negative value none.
	Leeway time.Duration
	// Logger receives key reload failures; nil means slog.Default().
	Logger *slog.Logger

	mu     sync.Mutex
	key    *jwtKey
	sig    fileSig // KeyFile's when key was read
	badSig fileSig // KeyFile's when it last failed to load (logged once)
}

// fileSig tells whether a file changed: its size and modification time
// (size -1: it could not be stat'ed).
type fileSig struct {
	size int64
	mod  time.Time
}

// ErrInvalidToken: the request's token was refused as such (a JWT with
// a bad signature, expired, malformed, ...). The Handler answers 403.
var ErrInvalidToken = errors.New("bridge: invalid token")

// JWTError says why JWTTokens refused a token. It wraps ErrInvalidToken
// and, when there is one, the JWT library's error, which never holds the
// token either.
type JWTError struct {
	// Reason is what was wrong, in words for the log: "unsigned (alg
	// none)", "bad signature (wrong key?)", "expired", "not valid yet",
	// "malformed", "missing claim host", ...
	Reason string
	// Err is the underlying error, or nil.
	Err error
}

func (e *JWTError) Error() string {
	if e.Err != nil {
		return "bridge: JWT refused: " + e.Reason + ": " + e.Err.Error()
	}
	return "bridge: JWT refused: " + e.Reason
}

// Unwrap returns ErrInvalidToken and Err.
func (e *JWTError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidToken, e.Err}
	}
	return []error{ErrInvalidToken}
}

func jwtRefused(reason string, err error) error { return &JWTError{Reason: reason, Err: err} }

// Lookup implements TokenStore: it checks the token and returns its
// target "host:port".
func (j *JWTTokens) Lookup(_ context.Context, token string) (string, error) {
	key, err := j.currentKey()
	if err != nil {
		return "", err
	}
	return key.target(token, j.leeway())
}

// Load reads the key now (Lookup reads it when first needed) and reports
// whether it is usable, so that a command line can fail at start.
func (j *JWTTokens) Load() error {
	_, err := j.currentKey()
	return err
}

func (j *JWTTokens) leeway() time.Duration {
	switch {
	case j.Leeway < 0:
		return 0
	case j.Leeway == 0:
		return DefaultJWTLeeway
	}
	return j.Leeway
}

// currentKey returns the key, reading KeyFile again only when its size or
// modification time changed: one stat per lookup, no read. A file that
// fails to load is logged once per change, and the previous key stays.
func (j *JWTTokens) currentKey() (*jwtKey, error) {
	if j.Key != nil {
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.key == nil {
			k, err := jwtKeyFor(j.Key)
			if err != nil {
				return nil, err
			}
			j.key = k
		}
		return j.key, nil
	}
	sig := fileSig{size: -1}
	st, statErr := os.Stat(j.KeyFile)
	if statErr == nil {
		sig = fileSig{size: st.Size(), mod: st.ModTime()}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.key != nil && (sig == j.sig || sig == j.badSig) {
		return j.key, nil // unchanged, or a broken file already logged
	}
	k, err := readJWTKeyFile(j.KeyFile, statErr)
	if err != nil {
		if j.key == nil {
			return nil, err
		}
		j.badSig = sig
		j.logger().Warn("bridge: JWT key file reload failed, keeping the previous key", "path", j.KeyFile, "err", err)
		return j.key, nil
	}
	j.key, j.sig = k, sig
	return k, nil
}

// readJWTKeyFile reads and parses a key file (statErr: why it could not
// be stat'ed, if so).
func readJWTKeyFile(path string, statErr error) (*jwtKey, error) {
	if statErr != nil {
		return nil, fmt.Errorf("bridge: JWT key: %w", statErr)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bridge: JWT key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWTKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("bridge: JWT key: %w", err)
	}
	if len(data) > maxJWTKeyFile {
		return nil, fmt.Errorf("bridge: JWT key: %s is larger than %d bytes", path, maxJWTKeyFile)
	}
	return parseJWTKeyFile(data)
}

func (j *JWTTokens) logger() *slog.Logger {
	if j.Logger != nil {
		return j.Logger
	}
	return slog.Default()
}

// target checks a token (encrypted or signed) and returns its target.
func (k *jwtKey) target(token string, leeway time.Duration) (string, error) {
	if len(token) > maxJWTLength {
		return "", jwtRefused(fmt.Sprintf("longer than %d bytes", maxJWTLength), nil)
	}
	if strings.Count(token, ".") == 4 {
		inner, err := k.decryptJWE(token)
		if err != nil {
			return "", err
		}
		token = inner
	}
	return k.verifyJWS(token, leeway)
}

// decryptJWE returns the signed JWT an encrypted token holds, as
// websockify's JWTTokenApi nests them.
func (k *jwtKey) decryptJWE(token string) (string, error) {
	if k.decrypt == nil {
		return "", jwtRefused("encrypted, but the key is a public "+k.kind+" key, which cannot decrypt", nil)
	}
	obj, err := jose.ParseEncryptedCompact(token, k.keyAlgs, k.contentEncs)
	if err != nil {
		return "", jwtRefused("malformed, or an encryption algorithm not allowed for a "+k.kind+" key", err)
	}
	plain, err := obj.Decrypt(k.decrypt)
	if err != nil {
		return "", jwtRefused("cannot decrypt (wrong key?)", err)
	}
	inner := strings.TrimSpace(string(plain))
	if strings.Count(inner, ".") != 2 {
		return "", jwtRefused("encrypted, but its content is not a signed JWT", nil)
	}
	return inner, nil
}

// jwtClaims are the claims read from a token; the registered ones are
// checked by the JWT library.
type jwtClaims struct {
	jwt.RegisteredClaims
	Host json.RawMessage `json:"host"`
	Port json.RawMessage `json:"port"`
}

func (k *jwtKey) verifyJWS(token string, leeway time.Duration) (string, error) {
	p := jwt.NewParser(jwt.WithValidMethods(k.methods), jwt.WithLeeway(leeway))
	// The header first, to name the reason of a refusal clearly.
	unverified, _, err := p.ParseUnverified(token, &jwtClaims{})
	if unverified == nil || errors.Is(err, jwt.ErrTokenMalformed) {
		return "", jwtRefused("malformed", err)
	}
	alg, _ := unverified.Header["alg"].(string)
	switch {
	case strings.EqualFold(alg, "none"):
		return "", jwtRefused("unsigned (alg none)", nil)
	case !slices.Contains(k.methods, alg):
		return "", jwtRefused(fmt.Sprintf("algorithm %q not allowed for a %s key (want %s)", alg, k.kind, strings.Join(k.methods, ", ")), nil)
	}
	var claims jwtClaims
	_, err = p.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return k.verify, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "", jwtRefused("bad signature (wrong key?)", nil)
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", jwtRefused("expired", nil)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "", jwtRefused("not valid yet", nil)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "", jwtRefused("malformed", err)
	default:
		return "", jwtRefused("invalid", err)
	}
	return jwtTarget(claims.Host, claims.Port)
}

// jwtTarget makes "host:port" from the host and port claims: host a
// non-empty string (an IPv6 address with or without brackets), port a
// number or a string of digits, 1 to 65535.
func jwtTarget(hostJSON, portJSON json.RawMessage) (string, error) {
	if len(hostJSON) == 0 || string(hostJSON) == "null" {
		return "", jwtRefused("missing claim host", nil)
	}
	if len(portJSON) == 0 || string(portJSON) == "null" {
		return "", jwtRefused("missing claim port", nil)
	}
	var host string
	if err := json.Unmarshal(hostJSON, &host); err != nil {
		return "", jwtRefused("claim host is not a string", nil)
	}
	if h, ok := strings.CutPrefix(host, "["); ok {
		if h, ok = strings.CutSuffix(h, "]"); !ok {
			return "", jwtRefused("claim host is not a host name or address", nil)
		}
		host = h
	}
	if !validTargetHost(host) {
		return "", jwtRefused("claim host is not a host name or address", nil)
	}
	portS := string(portJSON)
	if portJSON[0] == '"' {
		if err := json.Unmarshal(portJSON, &portS); err != nil {
			return "", jwtRefused("claim port is not a number", nil)
		}
	}
	// Digits only: ParseUint alone would take "+1", "1e3" is a float.
	if portS == "" || strings.Trim(portS, "0123456789") != "" {
		return "", jwtRefused("claim port is not a number", nil)
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil || port == 0 {
		return "", jwtRefused("claim port is out of range (1-65535)", nil)
	}
	return net.JoinHostPort(host, strconv.FormatUint(port, 10)), nil
}

// validTargetHost accepts an IP address or a host name: no white space,
// control characters or URL delimiters, and a colon only in an IPv6
// address.
func validTargetHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, c := range []byte(host) {
		if c <= ' ' || c == 0x7f || strings.IndexByte(":/?#@[]%\\", c) >= 0 {
			return false
		}
	}
	return true
}
