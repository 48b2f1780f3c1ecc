package pac

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
)

// A Fetcher reads PAC scripts, directly (never through a proxy), within
// FetchTimeout and at most MaxScriptBytes, and caches what it compiled.
//
// The caches are process-wide and keyed by everything that can change
// what a fetch returns: the URL, UserAgent, MaxHeaderBytes and Scope.
// Fetchers that differ in any of these never share a script, a WPAD
// result or a cached failure.
type Fetcher struct {
	// Dial opens the TCP connection to the PAC server; nil means a
	// net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// UserAgent is sent with each request; empty sends none.
	UserAgent string
	// MaxHeaderBytes caps the response header; zero means net/http's
	// default.
	MaxHeaderBytes int
	// Scope separates cache entries of Fetchers whose Dial differs (a
	// function value cannot be compared): a comparable value naming the
	// owner of Dial, or nil when Dial is nil or shared by the whole
	// process.
	Scope any
}

// Fetch reads the script at raw: an http, https or file URL.
func (f Fetcher) Fetch(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("invalid PAC URL")
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	switch u.Scheme {
	case "file":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		return readCapped(file)
	case "http", "https":
	default:
		return nil, fmt.Errorf("unsupported PAC URL scheme %q", u.Scheme)
	}
	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr := &http.Transport{
		Proxy:                  nil, // never fetch the PAC file through a proxy
		DialContext:            dial,
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  FetchTimeout,
		MaxResponseHeaderBytes: int64(f.MaxHeaderBytes),
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if f.UserAgent != "" {
		req.Header.Set("User-Agent", f.UserAgent)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: FetchTimeout}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said by the caller, redacted
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return readCapped(resp.Body)
}

func readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxScriptBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxScriptBytes {
		return nil, fmt.Errorf("PAC script larger than %d bytes", MaxScriptBytes)
	}
	return b, nil
}
