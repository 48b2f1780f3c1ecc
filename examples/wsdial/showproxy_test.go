package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShowProxy(t *testing.T) {
	t.Parallel()
	code, out, errOut := runWsdial(t, strings.NewReader(""), "-show-proxy", "-proxy", "https://alice:s3cret@proxy.example:8443", "wss://bob:pw2@target.example/db")
	require.Equal(t, 0, code, errOut)
	head, negotiate, _ := strings.Cut(out, "          Negotiate: ")
	require.Equal(t, `url:    wss://target.example/db
source: Dialer.Proxy
reason: the Dialer's Proxy function chose it
try:    1. https://alice:xxxxx@proxy.example:8443
`, head)
	// What Negotiate would use depends on the machine's Kerberos setup;
	// the SPN and the password's source do not.
	require.Contains(t, negotiate, "HTTP/proxy.example")
	require.Contains(t, negotiate, "proxy URL")
	require.NotContains(t, out+errOut, "s3cret")

	code, out, errOut = runWsdial(t, strings.NewReader(""), "-proxy", "direct", "ws://target.example/", "-show-proxy")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "try:    1. DIRECT\n")

	code, _, errOut = runWsdial(t, strings.NewReader(""), "-show-proxy", "ftp://target.example/")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "unsupported URL scheme")
}
