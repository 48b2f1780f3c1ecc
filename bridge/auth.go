package bridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// BasicAuth requires HTTP Basic credentials (websockify's BasicHTTPAuth
// auth plugin). Requests without valid credentials get 401 with
// WWW-Authenticate: Basic realm="<Realm>", which makes browsers prompt;
// the WebSocket that the page then opens carries the same credentials.
// Use it over TLS only: Basic sends the password in clear.
type BasicAuth struct {
	// Realm is shown by browsers; empty means "wsbridge".
	Realm string
	// Check reports whether user and password are valid. It must compare
	// in constant time; see BasicAuthPassword.
	Check func(user, password string) bool
}

// BasicAuthPassword returns a BasicAuth accepting exactly user and
// password, compared in constant time.
func BasicAuthPassword(user, password string) *BasicAuth {
	wantU, wantP := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return &BasicAuth{Check: func(u, p string) bool {
		gotU, gotP := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		okU := subtle.ConstantTimeCompare(gotU[:], wantU[:])
		okP := subtle.ConstantTimeCompare(gotP[:], wantP[:])
		return okU&okP == 1
	}}
}

func (b *BasicAuth) check(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && b.Check != nil && b.Check(u, p)
}

func (b *BasicAuth) challenge(w http.ResponseWriter) {
	realm := b.Realm
	if realm == "" {
		realm = "wsbridge"
	}
	w.Header().Set("WWW-Authenticate", "Basic realm="+strconv.Quote(realm)+", charset=\"UTF-8\"")
	http.Error(w, "authentication required", http.StatusUnauthorized)
}

// ErrOrigin is wrapped by the error logged for a refused Origin.
var ErrOrigin = errors.New("bridge: origin not allowed")

// checkOrigin applies AllowedOrigins (see its doc) to r.
func (h *Handler) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: unparsable Origin %q", ErrOrigin, origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	normalized := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, pat := range h.AllowedOrigins {
		switch {
		case pat == "*":
			return nil
		case strings.Contains(pat, "://"):
			if strings.EqualFold(strings.TrimSuffix(pat, "/"), normalized) {
				return nil
			}
		default:
			if ok, _ := path.Match(strings.ToLower(pat), strings.ToLower(u.Host)); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %q is not the request's host %q nor in the allowed origins", ErrOrigin, origin, r.Host)
}

// ErrClientCert is wrapped by the error logged for a refused client
// certificate.
var ErrClientCert = errors.New("bridge: client certificate not allowed")

// checkClientCert applies ClientCertCNs to r.
func (h *Handler) checkClientCert(r *http.Request) error {
	if len(h.ClientCertCNs) == 0 {
		return nil
	}
	if r.TLS == nil {
		return fmt.Errorf("%w: not a TLS connection", ErrClientCert)
	}
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return fmt.Errorf("%w: no verified client certificate", ErrClientCert)
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if !slices.Contains(h.ClientCertCNs, cn) {
		return fmt.Errorf("%w: common name %q not in the list", ErrClientCert, cn)
	}
	return nil
}
