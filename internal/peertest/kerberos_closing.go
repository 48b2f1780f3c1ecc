package peertest

import "testing"

// StartSquidNegotiateClosing is StartSquidNegotiate with "keep_alive off"
// for every scheme: squid closes the connection after the first 407 (the
// one that lists the schemes), so a client answers on a new connection.
func StartSquidNegotiateClosing(t testing.TB, kdc *KDC, also ...SquidAuth) *Squid {
	t.Helper()
	return startSquidNegotiate(t, kdc, false, also...)
}
