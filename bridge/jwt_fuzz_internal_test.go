package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzJWT: the token → target path. claims is signed correctly with the
// store's key, so the claims checks and the target parsing are reached;
// raw is taken as a token as it is. Whatever comes in, the answer is a
// "host:port" target with a port from 1 to 65535, or a *JWTError that
// wraps ErrInvalidToken and does not repeat the token; keyFile only must
// not panic the key reader.
func FuzzJWT(f *testing.F) {
	f.Add([]byte(`{"host":"127.0.0.1","port":5900}`), "a.b.c", []byte("c2VjcmV0"))
	f.Add([]byte(`{"host":"[::1]","port":"22","exp":1e12}`), "a.b.c.d.e", []byte("-----BEGIN PUBLIC KEY-----\n"))
	f.Add([]byte(`{"host":"h","port":65536,"nbf":"x"}`), "eyJhbGciOiJub25lIn0.e30.", []byte("=="))
	f.Add([]byte(`{"host":null,"port":1.0}`), "....", []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	secret := []byte("fuzz-secret-0123456789abcdefghij")
	key, err := jwtKeyFor(secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, claims []byte, raw string, keyFile []byte) {
		_, _ = parseJWTKeyFile(keyFile)

		input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + base64.RawURLEncoding.EncodeToString(claims)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		signed := input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		for _, token := range []string{signed, raw} {
			target, err := key.target(token, 0)
			if err != nil {
				var jerr *JWTError
				if !errors.As(err, &jerr) || !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("error %v is not a *JWTError wrapping ErrInvalidToken", err)
				}
				if len(token) >= 16 && strings.Contains(err.Error(), token) {
					t.Fatalf("error %q repeats the token", err)
				}
				continue
			}
			host, portS, err := net.SplitHostPort(target)
			if err != nil || host == "" {
				t.Fatalf("target %q is not host:port: %v", target, err)
			}
			if port, err := strconv.ParseUint(portS, 10, 16); err != nil || port == 0 || strconv.FormatUint(port, 10) != portS {
				t.Fatalf("target %q: bad port", target)
			}
		}
	})
}
