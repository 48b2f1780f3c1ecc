package httpauth

import (
	"context"
	"fmt"
)

// Source says where credentials came from. The constants are in the order
// Sources consults them.
type Source int

// The credential sources, in order.
const (
	SourceNone     Source = iota
	SourceURL             // the proxy URL's userinfo
	SourceStore           // the Store of credentials that worked
	SourceCallback        // the caller's callback (Dialer.Credentials)
	SourceNetrc           // the netrc file
	numSources
)

func (s Source) String() string {
	switch s {
	case SourceURL:
		return "the proxy URL"
	case SourceStore:
		return "the cache of credentials that worked"
	case SourceCallback:
		return "Dialer.Credentials"
	case SourceNetrc:
		return "the netrc file"
	}
	return "no source"
}

// Sources finds credentials for one dial in their one order: the proxy
// URL's userinfo (when present, the only source), the Store, the
// callback, the netrc file. It remembers what the proxy refused: a source
// whose credentials were refused is not asked again in the dial, and
// refused credentials are never offered again, whatever source repeats
// them.
type Sources struct {
	URL      *Credentials                                                  // from the proxy URL; nil when it has none
	Stored   func(realm string) *Credentials                               // the Store's credentials for the realm, or nil
	Callback func(ctx context.Context, realm string) (*Credentials, error) // nil: no callback
	Netrc    func() (*Credentials, error)                                  // nil: netrc is off
	Logf     func(format string, args ...any)                              // where netrc errors go; nil drops them

	exhausted [numSources]bool
	refused   []Credentials
}

// Next returns credentials for realm from the first source that has
// usable ones, and that source; nil and SourceNone when none has. Only a
// callback error is returned.
func (s *Sources) Next(ctx context.Context, realm string) (*Credentials, Source, error) {
	if s.URL != nil {
		// Credentials in the URL are the only ones meant for this proxy.
		if s.exhausted[SourceURL] {
			return nil, SourceNone, nil
		}
		c := *s.URL
		return &c, SourceURL, nil
	}
	if s.Stored != nil && !s.exhausted[SourceStore] {
		if c := s.Stored(realm); c != nil && !s.wasRefused(*c) {
			return c, SourceStore, nil
		}
	}
	if s.Callback != nil && !s.exhausted[SourceCallback] {
		c, err := s.Callback(ctx, realm)
		if err != nil {
			return nil, SourceNone, fmt.Errorf("credentials callback: %w", err)
		}
		if c != nil && !s.wasRefused(*c) {
			return c, SourceCallback, nil
		}
	}
	if s.Netrc != nil && !s.exhausted[SourceNetrc] {
		c, err := s.Netrc()
		switch {
		case err != nil:
			if s.Logf != nil {
				s.Logf("auth: netrc: %v", err)
			}
		case c != nil && !s.wasRefused(*c):
			return c, SourceNetrc, nil
		}
	}
	return nil, SourceNone, nil
}

// Refused records that the proxy refused c (nil when the credentials are
// unknown, as for a resumed Digest key) from src.
func (s *Sources) Refused(src Source, c *Credentials) {
	if src != SourceNone {
		s.exhausted[src] = true
	}
	if c != nil {
		s.refused = append(s.refused, *c)
	}
}

// Exhausted reports whether src was refused in this dial.
func (s *Sources) Exhausted(src Source) bool { return s.exhausted[src] }

func (s *Sources) wasRefused(c Credentials) bool {
	for _, r := range s.refused {
		if r == c {
			return true
		}
	}
	return false
}
