package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
)

// showProxy prints the Dialer's decision for o.url: the proxies in the
// order a dial would try them, the settings that chose them and why, with
// passwords redacted. It does not connect to anything but a PAC or WPAD
// server.
func showProxy(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("unsupported URL scheme %q (want ws or wss)", u.Scheme)
	}
	d, err := newDialer(o, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	dec, err := d.ProxyForURL(ctx, u)
	if err != nil {
		return fmt.Errorf("choose proxy for %s: %w", dec.Target, err)
	}
	fmt.Fprintf(stdout, "url:    %s\n", dec.Target)
	fmt.Fprintf(stdout, "source: %s\n", dec.Source)
	if dec.PAC != "" {
		fmt.Fprintf(stdout, "pac:    %s\n", dec.PAC)
	}
	fmt.Fprintf(stdout, "reason: %s\n", dec.Reason)
	for i, p := range dec.Proxies {
		label := "try:   "
		if i > 0 {
			label = "       "
		}
		if p == nil {
			fmt.Fprintf(stdout, "%s %d. DIRECT\n", label, i+1)
			continue
		}
		fmt.Fprintf(stdout, "%s %d. %s\n", label, i+1, p.Redacted())
		if p.Scheme == "http" || p.Scheme == "https" {
			// Which Kerberos credentials a Negotiate challenge would get.
			fmt.Fprintf(stdout, "          %s\n", d.DescribeNegotiate(ctx, p))
		}
	}
	return nil
}
