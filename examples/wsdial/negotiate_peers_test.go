package main

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/internal/peertest"
)

// wsdial behind squid with Kerberos (a real MIT KDC), after kinit: no
// proxy credentials on the command line. -proxy-auth negotiate and the
// default both use the ticket; -v says which principal, SPN and cache;
// -show-proxy says what Negotiate would use; a proxy reached by IP address
// needs -proxy-spn.
//
// Not parallel: wsdial reads KRB5CCNAME and KRB5_CONFIG from the process
// environment, set here with t.Setenv.
func TestPeersNegotiateFlags(t *testing.T) {
	kdc := peertest.StartKDC(t)
	kdc.AddPrincipal(t, "alice", "s3cret-Kerb")
	squid := peertest.StartSquidNegotiate(t, kdc)
	_, wsPort, _ := net.SplitHostPort(peertest.Websockify(t, peertest.EchoServer(t), ""))
	target := "ws://" + net.JoinHostPort(peertest.ProxyHost, wsPort) + "/"
	_, port, _ := net.SplitHostPort(squid.Addr)
	byName := "http://" + net.JoinHostPort(peertest.ProxyHost, port)
	byIP := "http://" + squid.Addr
	ccache := kdc.Kinit(t, "alice", "s3cret-Kerb")
	t.Setenv("KRB5_CONFIG", kdc.Krb5Conf)
	t.Setenv("KRB5CCNAME", "FILE:"+ccache)

	const in = "hello through kerberos\n"
	dial := func(args ...string) (int, string, string) {
		args = append([]string{"-binary", "-subprotocol", "binary", "-linger", "2s", "-v"}, args...)
		return runWsdial(t, strings.NewReader(in), append(args, target)...)
	}
	for _, auth := range []string{"negotiate", "any"} {
		code, out, errOut := dial("-proxy", byName, "-proxy-auth", auth)
		require.Equal(t, 0, code, errOut)
		require.Equal(t, in, out)
		require.Contains(t, errOut, "principal alice@WSPROXY.TEST")
		require.Contains(t, errOut, "SPN HTTP/proxy.wsproxy.test (from the proxy host)")
		require.Contains(t, errOut, "ticket cache FILE:"+ccache)
		require.Contains(t, errOut, "Proxy-Authorization: Negotiate [redacted]")
		require.NotContains(t, errOut, "Negotiate YII")
	}

	code, _, errOut := dial("-proxy", byIP)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "does not know the proxy's service principal HTTP/127.0.0.1")

	code, out, errOut := dial("-proxy", byIP, "-proxy-spn", peertest.ProxySPN)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, in, out)
	require.Contains(t, errOut, "SPN HTTP/proxy.wsproxy.test (set explicitly)")

	code, out, errOut = runWsdial(t, strings.NewReader(""), "-show-proxy", "-proxy", byIP, "-proxy-spn", peertest.ProxySPN, target)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Negotiate: SPN HTTP/proxy.wsproxy.test, realm WSPROXY.TEST")
	require.Contains(t, out, "ticket cache FILE:"+ccache+" of alice@WSPROXY.TEST, valid until")
}
