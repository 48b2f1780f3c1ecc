package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
)

// addrResolver records what the Handler's request context says about the
// client, then refuses the request (no target is needed to see it).
type addrResolver struct {
	addr string
	ap   netip.AddrPort
	ok   bool
}

func (a *addrResolver) Resolve(ctx context.Context, _ *http.Request) (bridge.Target, error) {
	a.addr = bridge.ClientAddr(ctx)
	a.ap, a.ok = bridge.ClientAddrPort(ctx)
	return bridge.Target{}, fmt.Errorf("test: %w", bridge.ErrNoToken)
}

type clientAddrCase struct {
	name    string
	peer    string   // the socket's RemoteAddr
	header  string   // "" means X-Forwarded-For
	values  []string // header lines
	trusted string   // comma-separated; "" means none
	want    string   // ClientAddr
	wantIP  string   // ClientAddrPort's IP:port, "" when not ok
}

func (c clientAddrCase) String() string {
	return fmt.Sprintf("peer=%s %s=%q trusted=%q", c.peer, c.header, c.values, c.trusted)
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []clientAddrCase{
		{name: "no trusted proxies: header ignored", peer: "192.0.2.1:5000",
			values: []string{"203.0.113.9"}, want: "192.0.2.1:5000", wantIP: "192.0.2.1:5000"},
		{name: "untrusted peer: header ignored (spoofing)", peer: "192.0.2.1:5000", trusted: "10.0.0.0/8",
			values: []string{"203.0.113.9"}, want: "192.0.2.1:5000", wantIP: "192.0.2.1:5000"},
		{name: "trusted peer, one hop", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"203.0.113.9"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},
		{name: "trusted peer, no header: the peer", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			want: "10.0.0.5:40000", wantIP: "10.0.0.5:40000"},
		// A client prepends a fake address; the trusted proxy appends the
		// real one: the rightmost untrusted hop wins.
		{name: "spoofed chain", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"1.1.1.1, 203.0.113.9"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},
		{name: "two trusted proxies", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8, 172.16.0.0/12",
			values: []string{"1.1.1.1, 203.0.113.9, 172.16.3.4"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},
		{name: "header lines are one list", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"1.1.1.1", "203.0.113.9, 10.1.1.1"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},
		{name: "every hop trusted: the leftmost", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"10.9.9.9, 10.1.1.1"}, want: "10.9.9.9", wantIP: "10.9.9.9:0"},
		{name: "IPv6 bare and bracketed with port", peer: "[2001:db8::5]:40000", trusted: "2001:db8::/64",
			values: []string{"[2001:db8:1::9]:4711, 2001:db8::7"}, want: "[2001:db8:1::9]:4711", wantIP: "[2001:db8:1::9]:4711"},
		{name: "IPv4 with port", peer: "10.0.0.5:40000", trusted: "10.0.0.5",
			values: []string{"203.0.113.9:1234"}, want: "203.0.113.9:1234", wantIP: "203.0.113.9:1234"},
		{name: "IPv4-mapped peer matches an IPv4 prefix", peer: "[::ffff:10.0.0.5]:40000", trusted: "10.0.0.0/8",
			values: []string{"203.0.113.9"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},
		{name: "garbage left of the real client is never reached", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"not-an-ip, 203.0.113.9"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},
		{name: "garbage reached by the walk: unknown", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"203.0.113.9, not-an-ip"}, want: "unknown"},
		{name: "zone refused", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8",
			values: []string{"fe80::1%eth0"}, want: "unknown"},
		{name: "X-Real-IP by name", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "X-Real-IP",
			values: []string{"203.0.113.9"}, want: "203.0.113.9", wantIP: "203.0.113.9:0"},

		// RFC 7239 Forwarded.
		{name: "Forwarded for with port", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for=192.0.2.60;proto=http;by=203.0.113.43`}, want: "192.0.2.60", wantIP: "192.0.2.60:0"},
		{name: "Forwarded IPv6 quoted", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`For="[2001:db8:cafe::17]:4711"`}, want: "[2001:db8:cafe::17]:4711", wantIP: "[2001:db8:cafe::17]:4711"},
		{name: "Forwarded spoofed chain", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for=1.1.1.1, for=198.51.100.17;by=10.0.0.5`}, want: "198.51.100.17", wantIP: "198.51.100.17:0"},
		{name: "Forwarded obfuscated node is the client", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for=192.0.2.43, for=_hidden, for=10.2.2.2`}, want: "_hidden"},
		{name: "Forwarded unknown", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for=unknown`}, want: "unknown"},
		{name: "Forwarded obfuscated port", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for="198.51.100.17:_port1"`}, want: "198.51.100.17", wantIP: "198.51.100.17:0"},
		{name: "Forwarded element without for", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for=198.51.100.17, proto=https`}, want: "unknown"},
		{name: "Forwarded escaped quote in another parameter", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`ext="a\",for=6.6.6.6";for=198.51.100.17`}, want: "198.51.100.17", wantIP: "198.51.100.17:0"},
		{name: "Forwarded unterminated quote on an earlier line is not reached", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for="1.2.3.4`, `for=198.51.100.17`}, want: "198.51.100.17", wantIP: "198.51.100.17:0"},
		{name: "Forwarded unterminated quote reached", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for=198.51.100.17, for="10.1.1.1`}, want: "unknown"},
		{name: "Forwarded bare IPv6 is malformed", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: []string{`for="2001:db8::1"`}, want: "unknown"},
		{name: "Forwarded ignores X-Forwarded-For", peer: "10.0.0.5:40000", trusted: "10.0.0.0/8", header: "Forwarded",
			values: nil, want: "10.0.0.5:40000", wantIP: "10.0.0.5:40000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := &addrResolver{}
			h := &bridge.Handler{Resolver: res, Logger: slog0(t), ClientAddrHeader: tc.header}
			if tc.trusted != "" {
				var err error
				h.TrustedProxies, err = bridge.ParseTrustedProxies(strings.Split(tc.trusted, ",")...)
				require.NoError(t, err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			name := tc.header
			if name == "" {
				name = "X-Forwarded-For"
			}
			for _, v := range tc.values {
				r.Header.Add(name, v)
			}
			// A spoofed header of the other kind must never be read.
			if name == "Forwarded" {
				r.Header.Add("X-Forwarded-For", "6.6.6.6")
			} else {
				r.Header.Add("Forwarded", "for=6.6.6.6")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, http.StatusNotFound, w.Code)
			assert.Equal(t, tc.want, res.addr, tc.String())
			if tc.wantIP == "" {
				assert.False(t, res.ok, tc.String())
			} else {
				assert.True(t, res.ok, tc.String())
				assert.Equal(t, tc.wantIP, res.ap.String(), tc.String())
			}
		})
	}
}

// TestClientAddrInRefusalLog: the refusal log line names the real client,
// not the proxy.
func TestClientAddrInRefusalLog(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	h := &bridge.Handler{Resolver: &addrResolver{}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Logger: slogTo(logs), BasicAuth: bridge.BasicAuthPassword("alice", "s3cret")}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.5:40000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	h.ServeHTTP(httptest.NewRecorder(), r)
	assert.Contains(t, logs.String(), "remote=203.0.113.9 ")
	assert.NotContains(t, logs.String(), "10.0.0.5")
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := bridge.ParseTrustedProxies("10.0.0.0/8", "192.0.2.7", "::ffff:172.16.0.0/108", "fd00::/8", "10.1.2.3/8")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.0.0.0/8"),
	}, got)
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "fe80::1%eth0"} {
		_, err := bridge.ParseTrustedProxies(bad)
		assert.Error(t, err, bad)
	}
	_, err = bridge.ParseTrustedProxies("nope")
	assert.Contains(t, err.Error(), `"nope"`)
	assert.False(t, errors.Is(err, bridge.ErrForwardedHeader))
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
