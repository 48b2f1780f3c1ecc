package bridge_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// jwtKeys are key files for JWTTokens, made by openssl (EC, Ed25519) and
// by Go (RSA, the symmetric secret). Tokens are made by Node's crypto
// (testdata/jwt_sign.js), independently of the libraries under test.
type jwtKeys struct {
	dir                     string
	secret, secretFile      string // base64url, and the file holding it
	other                   string // another secret, base64url
	rsaPriv, rsaPub         string
	ecPriv, ecPub           string // ecPriv starts with an EC PARAMETERS block
	edPriv, edPub           string
	rsaPubText              []byte
	node                    string
	signScript, openssl     string
	rsaKey                  *rsa.PrivateKey
	now                     int64
	secretBytes, otherBytes []byte
}

func newJWTKeys(t *testing.T) *jwtKeys {
	t.Helper()
	k := &jwtKeys{dir: t.TempDir(), now: time.Now().Unix()}
	k.node = peertest.Require(t, "node", "apt-get install -y nodejs")
	k.openssl = peertest.Require(t, "openssl", "apt-get install -y openssl")
	var err error
	k.signScript, err = filepath.Abs("testdata/jwt_sign.js")
	require.NoError(t, err)

	k.secretBytes, k.otherBytes = randomBytes(t, 32), randomBytes(t, 32)
	k.secret = base64.RawURLEncoding.EncodeToString(k.secretBytes)
	k.other = base64.RawURLEncoding.EncodeToString(k.otherBytes)
	k.secretFile = k.path("secret.jwk")
	peertest.WriteFile(t, k.secretFile, k.secret+"\n", 0o600) // a newline, as echo writes it

	k.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k.rsaKey)
	require.NoError(t, err)
	k.rsaPriv = k.path("rsa.pem")
	peertest.WriteFile(t, k.rsaPriv, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), 0o600)
	der, err = x509.MarshalPKIXPublicKey(&k.rsaKey.PublicKey)
	require.NoError(t, err)
	k.rsaPubText = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	k.rsaPub = k.path("rsa.pub")
	peertest.WriteFile(t, k.rsaPub, string(k.rsaPubText), 0o644)

	k.ecPriv, k.ecPub = k.path("ec.pem"), k.path("ec.pub")
	k.edPriv, k.edPub = k.path("ed.pem"), k.path("ed.pub")
	k.run(t, k.openssl, "ecparam", "-name", "prime256v1", "-genkey", "-out", k.ecPriv)
	k.run(t, k.openssl, "ec", "-in", k.ecPriv, "-pubout", "-out", k.ecPub)
	k.run(t, k.openssl, "genpkey", "-algorithm", "ed25519", "-out", k.edPriv)
	k.run(t, k.openssl, "pkey", "-in", k.edPriv, "-pubout", "-out", k.edPub)
	return k
}

func (k *jwtKeys) path(name string) string { return filepath.Join(k.dir, name) }

func (k *jwtKeys) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// sign makes one token per spec with Node (see testdata/jwt_sign.js).
func (k *jwtKeys) sign(t *testing.T, specs ...map[string]any) []string {
	t.Helper()
	arg, err := json.Marshal(specs)
	require.NoError(t, err)
	var tokens []string
	require.NoError(t, json.Unmarshal([]byte(k.run(t, k.node, k.signScript, string(arg))), &tokens))
	require.Len(t, tokens, len(specs))
	return tokens
}

// claims are a token's claims: host and port, plus extra (nil values
// deleted).
func claims(host, port any, extra map[string]any) map[string]any {
	c := map[string]any{"host": host, "port": port}
	for name, v := range extra {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	return c
}

type jwtCase struct {
	name    string
	keyFile string
	spec    map[string]any
	want    string // the target, or with reason the refusal's reason
	reason  string
}

func (c jwtCase) String() string { return c.name }

// TestJWTTokens: tokens of every algorithm family, made by Node, are
// accepted with the right key file and refused, with the reason named,
// when unsigned, signed with another key or algorithm, expired, not yet
// valid, malformed or without a usable target.
func TestJWTTokens(t *testing.T) {
	t.Parallel()
	k := newJWTKeys(t)
	hs := func(payload map[string]any) map[string]any {
		return map[string]any{"alg": "HS256", "secret": k.secret, "payload": payload}
	}
	target := claims("127.0.0.1", 5900, nil)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	require.NoError(t, err)
	otherPub := k.path("other.pub")
	peertest.WriteFile(t, otherPub, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), 0o644)
	cases := []jwtCase{
		{"HS256", k.secretFile, hs(target), "127.0.0.1:5900", ""},
		{"HS384", k.secretFile, map[string]any{"alg": "HS384", "secret": k.secret, "payload": target}, "127.0.0.1:5900", ""},
		{"HS512 port as string", k.secretFile, map[string]any{"alg": "HS512", "secret": k.secret, "payload": claims("vnc.example", "5901", nil)}, "vnc.example:5901", ""},
		{"RS256", k.rsaPub, map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": target}, "127.0.0.1:5900", ""},
		{"PS512", k.rsaPub, map[string]any{"alg": "PS512", "key": k.rsaPriv, "payload": target}, "127.0.0.1:5900", ""},
		{"RS256 private key file", k.rsaPriv, map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": target}, "127.0.0.1:5900", ""},
		{"ES256 openssl key", k.ecPub, map[string]any{"alg": "ES256", "key": k.ecPriv, "payload": target}, "127.0.0.1:5900", ""},
		{"ES256 private key file with EC PARAMETERS", k.ecPriv, map[string]any{"alg": "ES256", "key": k.ecPriv, "payload": target}, "127.0.0.1:5900", ""},
		{"EdDSA", k.edPub, map[string]any{"alg": "EdDSA", "key": k.edPriv, "payload": claims("::1", 22, nil)}, "[::1]:22", ""},
		{"IPv6 in brackets", k.secretFile, hs(claims("[::1]", 22, nil)), "[::1]:22", ""},
		{"exp and nbf inside the leeway", k.secretFile, hs(claims("127.0.0.1", 5900, map[string]any{"exp": k.now - 5, "nbf": k.now + 5})), "127.0.0.1:5900", ""},

		{"expired", k.secretFile, hs(claims("127.0.0.1", 5900, map[string]any{"exp": k.now - 120})), "", "expired"},
		{"not yet valid", k.secretFile, hs(claims("127.0.0.1", 5900, map[string]any{"nbf": k.now + 120})), "", "not valid yet"},
		{"wrong secret", k.secretFile, map[string]any{"alg": "HS256", "secret": k.other, "payload": target}, "", "bad signature"},
		{"wrong RSA key", otherPub, map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": target}, "", "bad signature"},
		{"alg none", k.secretFile, map[string]any{"alg": "none", "payload": target}, "", "unsigned (alg none)"},
		{"alg none with an RSA key", k.rsaPub, map[string]any{"alg": "none", "payload": target}, "", "unsigned (alg none)"},
		{"HS256 with the RSA public key as secret", k.rsaPub,
			map[string]any{"alg": "HS256", "secret": base64.RawURLEncoding.EncodeToString(k.rsaPubText), "payload": target}, "", `algorithm "HS256" not allowed for a RSA key`},
		{"RS256 against a secret", k.secretFile, map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": target}, "", `algorithm "RS256" not allowed for a symmetric key`},
		{"ES256 against Ed25519", k.edPub, map[string]any{"alg": "ES256", "key": k.ecPriv, "payload": target}, "", "not allowed for a Ed25519 key"},
		{"missing host", k.secretFile, hs(claims(nil, 5900, map[string]any{"host": nil})), "", "missing claim host"},
		{"missing port", k.secretFile, hs(claims("127.0.0.1", nil, map[string]any{"port": nil})), "", "missing claim port"},
		{"port 0", k.secretFile, hs(claims("127.0.0.1", 0, nil)), "", "out of range"},
		{"port 65536", k.secretFile, hs(claims("127.0.0.1", 65536, nil)), "", "out of range"},
		{"port -1", k.secretFile, hs(claims("127.0.0.1", -1, nil)), "", "not a number"},
		{"port 59.5", k.secretFile, hs(claims("127.0.0.1", 59.5, nil)), "", "not a number"},
		{"port name", k.secretFile, hs(claims("127.0.0.1", "vnc", nil)), "", "not a number"},
		{"host a number", k.secretFile, hs(claims(127, 5900, nil)), "", "claim host is not a string"},
		{"host with a path", k.secretFile, hs(claims("a/b", 5900, nil)), "", "not a host name"},
		{"host with a port", k.secretFile, hs(claims("a:1", 5900, nil)), "", "not a host name"},
		{"exp a string", k.secretFile, hs(claims("127.0.0.1", 5900, map[string]any{"exp": "tomorrow"})), "", "malformed"},

		{"JWE dir", k.secretFile, map[string]any{"alg": "HS256", "secret": k.secret, "jwe": "dir", "payload": target}, "127.0.0.1:5900", ""},
		{"JWE A256KW", k.secretFile, map[string]any{"alg": "HS256", "secret": k.secret, "jwe": "A256KW", "payload": target}, "127.0.0.1:5900", ""},
		{"JWE RSA-OAEP-256", k.rsaPriv, map[string]any{"alg": "RS256", "key": k.rsaPriv, "jwe": "RSA-OAEP-256", "encKey": k.rsaPub, "payload": target}, "127.0.0.1:5900", ""},
		{"JWE with a public key file", k.rsaPub, map[string]any{"alg": "RS256", "key": k.rsaPriv, "jwe": "RSA-OAEP-256", "encKey": k.rsaPub, "payload": target}, "", "cannot decrypt"},
		{"JWE wrong secret", k.secretFile, map[string]any{"alg": "HS256", "secret": k.other, "jwe": "dir", "payload": target}, "", "cannot decrypt"},
		{"JWE holding an expired JWT", k.secretFile, map[string]any{"alg": "HS256", "secret": k.secret, "jwe": "dir", "payload": claims("127.0.0.1", 5900, map[string]any{"exp": k.now - 120})}, "", "expired"},
	}
	specs := make([]map[string]any, len(cases))
	for i, c := range cases {
		specs[i] = c.spec
	}
	tokens := k.sign(t, specs...)
	for i, c := range cases {
		store := &bridge.JWTTokens{KeyFile: c.keyFile}
		got, err := store.Lookup(context.Background(), tokens[i])
		if c.reason == "" {
			if assert.NoError(t, err, c) {
				assert.Equal(t, c.want, got, c)
			}
			continue
		}
		require.Error(t, err, c)
		assert.ErrorIs(t, err, bridge.ErrInvalidToken, c)
		var jerr *bridge.JWTError
		if assert.ErrorAs(t, err, &jerr, c) {
			assert.Contains(t, jerr.Error(), c.reason, c)
		}
		assert.NotContains(t, err.Error(), tokens[i], c)
		assert.NotContains(t, err.Error(), longestPart(tokens[i]), "%s: the payload leaked", c)
	}
}

// TestJWTMalformed: strings that are not JWTs are refused as malformed
// without reaching a signature check.
func TestJWTMalformed(t *testing.T) {
	t.Parallel()
	store := &bridge.JWTTokens{Key: []byte("0123456789abcdef0123456789abcdef")}
	for _, tok := range []string{"", "abc", "a.b", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.!!!.x", "....", "a.b.c.d.e",
		"eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("A", 20000) + ".x"} {
		_, err := store.Lookup(context.Background(), tok)
		assert.ErrorIs(t, err, bridge.ErrInvalidToken, "%.40q", tok)
	}
}

// TestJWTKeyFiles: key files that cannot be used are errors (a 502, not a
// 403, since the token is not at fault), and a PEM file without a key is
// never taken as a symmetric secret.
func TestJWTKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":        "\n",
		"not base64":   "this is not base64!",
		"pem garbage":  "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		"pem no key":   "-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n",
		"pem broken":   "-----BEGIN PUBLIC KEY-----\n",
		"encrypted pk": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		peertest.WriteFile(t, path, content, 0o600)
		store := &bridge.JWTTokens{KeyFile: path}
		err := store.Load()
		assert.Error(t, err, name)
		_, err = store.Lookup(context.Background(), "a.b.c")
		assert.Error(t, err, name)
		assert.NotErrorIs(t, err, bridge.ErrInvalidToken, name)
	}
	err := (&bridge.JWTTokens{KeyFile: filepath.Join(dir, "missing")}).Load()
	assert.ErrorIs(t, err, os.ErrNotExist)
	// Padding and the standard alphabet are accepted, as Python's
	// decoder does.
	peertest.WriteFile(t, filepath.Join(dir, "padded"), " "+base64.StdEncoding.EncodeToString([]byte{0xfb, 0xff, 1, 2, 3})+"\n", 0o600)
	assert.NoError(t, (&bridge.JWTTokens{KeyFile: filepath.Join(dir, "padded")}).Load())
}

// TestJWTKeyRotation: a new key file is used at once; a broken one is
// logged and the previous key kept.
func TestJWTKeyRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	oldKey, newKey := []byte("old-secret-0123456789abcdefghijk"), []byte("new-secret-0123456789abcdefghijk")
	write := func(content string, age time.Duration) {
		peertest.WriteFile(t, path, content, 0o600)
		mt := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(path, mt, mt))
	}
	hs := func(key []byte) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"host": "127.0.0.1", "port": 1}).SignedString(key)
		require.NoError(t, err)
		return s
	}
	logs := &logBuffer{}
	store := &bridge.JWTTokens{KeyFile: path, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	write(base64.RawURLEncoding.EncodeToString(oldKey), time.Hour)
	_, err := store.Lookup(context.Background(), hs(oldKey))
	require.NoError(t, err)

	write(base64.RawURLEncoding.EncodeToString(newKey), 30*time.Minute)
	_, err = store.Lookup(context.Background(), hs(oldKey))
	assert.ErrorIs(t, err, bridge.ErrInvalidToken)
	_, err = store.Lookup(context.Background(), hs(newKey))
	assert.NoError(t, err)

	write("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 10*time.Minute)
	_, err = store.Lookup(context.Background(), hs(newKey))
	assert.NoError(t, err, "the previous key stays in use")
	assert.Contains(t, logs.String(), "JWT key file reload failed")
}

// TestJWTHandler: through the Handler, a valid token reaches its target;
// an expired one gets 403 and a log line naming the reason, not the
// token; a target outside the allow-list gets 403.
func TestJWTHandler(t *testing.T) {
	t.Parallel()
	k := newJWTKeys(t)
	echo := peertest.EchoServer(t)
	host, port, _ := strings.Cut(echo, ":")
	allow, err := bridge.ParseAllowList("127.0.0.1/32:*")
	require.NoError(t, err)
	url, logs := serve(t, &bridge.Handler{Resolver: &bridge.TokenResolver{Store: &bridge.JWTTokens{KeyFile: k.rsaPub}, Allow: allow}})
	tokens := k.sign(t,
		map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": claims(host, port, map[string]any{"exp": k.now + 600})},
		map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": claims(host, port, map[string]any{"exp": k.now - 600})},
		map[string]any{"alg": "RS256", "key": k.rsaPriv, "payload": claims("10.9.8.7", 22, nil)},
		map[string]any{"alg": "none", "payload": claims(host, port, nil)},
	)

	c := dial(t, url+"/websockify?token="+tokens[0], nil)
	require.NoError(t, c.Write(context.Background(), websocket.MessageBinary, []byte("jwt")))
	assert.Equal(t, "jwt", string(readN(t, c, 3, false)))
	c.Close(websocket.StatusNormalClosure, "")

	for i, reason := range map[int]string{1: "expired", 2: "target not allowed", 3: "unsigned (alg none)"} {
		status, _ := dialStatus(t, url+"/?token="+tokens[i], nil)
		assert.Equal(t, http.StatusForbidden, status, reason)
		assert.Contains(t, logs.String(), reason)
		assert.NotContains(t, logs.String(), tokens[i])
		assert.NotContains(t, logs.String(), longestPart(tokens[i]))
	}
	assert.Contains(t, logs.String(), "status=403")
}

// longestPart is a token's longest dot-separated part: its payload or
// ciphertext, which a log line must not show.
func longestPart(token string) string {
	longest := ""
	for part := range strings.SplitSeq(token, ".") {
		if len(part) > len(longest) {
			longest = part
		}
	}
	return longest
}

// TestJWTRefusedEncryptions: encrypted tokens whose key management is
// password-based (PBES2: the sender chooses the work the bridge does) or
// RSA1_5 are refused even when made with the right key; the same token
// with A256KW is accepted, so the refusal is the algorithm's.
func TestJWTRefusedEncryptions(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	inner, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"host": "127.0.0.1", "port": 1}).SignedString(secret)
	require.NoError(t, err)
	innerRSA, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"host": "127.0.0.1", "port": 1}).SignedString(rsaKey)
	require.NoError(t, err)
	encrypt := func(alg jose.KeyAlgorithm, key any, plaintext string) string {
		e, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: alg, Key: key, PBES2Count: 100000}, nil)
		require.NoError(t, err)
		obj, err := e.Encrypt([]byte(plaintext))
		require.NoError(t, err)
		s, err := obj.CompactSerialize()
		require.NoError(t, err)
		return s
	}
	symmetric := &bridge.JWTTokens{Key: secret}
	_, err = symmetric.Lookup(context.Background(), encrypt(jose.A256KW, secret, inner))
	require.NoError(t, err)
	_, err = symmetric.Lookup(context.Background(), encrypt(jose.PBES2_HS256_A128KW, secret, inner))
	assert.ErrorContains(t, err, "encryption algorithm not allowed")

	private := &bridge.JWTTokens{Key: rsaKey}
	_, err = private.Lookup(context.Background(), encrypt(jose.RSA_OAEP, &rsaKey.PublicKey, innerRSA))
	require.NoError(t, err)
	_, err = private.Lookup(context.Background(), encrypt(jose.RSA1_5, &rsaKey.PublicKey, innerRSA))
	assert.ErrorContains(t, err, "encryption algorithm not allowed")
}
