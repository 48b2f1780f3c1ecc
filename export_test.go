package wsproxy

import (
	"context"
	"net"
	"time"

	"github.com/wsproxy/wsproxy/internal/sysproxy"
)

// Hooks that let black-box tests run without touching the process
// environment or the machine's proxy settings.

// SetTestEnv makes d read proxy variables from env instead of the process
// environment and skip the operating system's settings.
func SetTestEnv(d *Dialer, env map[string]string) {
	d.hooks = &testHooks{
		getenv:   func(k string) string { return env[k] },
		settings: func(context.Context) (*sysproxy.Settings, error) { return nil, nil },
	}
}

// ProxyFromEnv exposes the environment look-up with a given environment.
var ProxyFromEnv = proxyFromEnv

// SystemSettings is the portable form of the OS proxy settings, for tests.
type SystemSettings = sysproxy.Settings

// TestHooks replace what a Dialer asks the machine, for tests.
type TestHooks struct {
	Env           map[string]string                              // the environment (nil: empty)
	System        *SystemSettings                                // the OS settings (nil: none)
	SystemErr     error                                          // the OS look-up fails with this
	SystemFunc    func(context.Context) (*SystemSettings, error) // when set, reads the OS settings instead of System and SystemErr
	Hosts         map[string][]string                            // DNS for PAC helpers; other names fail
	MyIPs         []string                                       // this machine's addresses for myIpAddress
	Now           time.Time                                      // the clock for PAC time helpers (zero: real)
	SearchDomains []string                                       // DNS search domains for WPAD
	PACLimit      time.Duration                                  // PAC evaluation limit (zero: default)
	ProxyLoopback bool                                           // OS settings and PAC apply to loopback targets too
}

// SetTestHooks makes d use h instead of the environment and the machine.
func SetTestHooks(d *Dialer, h TestHooks) {
	hooks := &testHooks{
		getenv: func(k string) string { return h.Env[k] },
		settings: func(ctx context.Context) (*sysproxy.Settings, error) {
			if h.SystemFunc != nil {
				return h.SystemFunc(ctx)
			}
			return h.System, h.SystemErr
		},
		lookupIP: func(ctx context.Context, host string) ([]net.IP, error) {
			var ips []net.IP
			for _, s := range h.Hosts[host] {
				ips = append(ips, net.ParseIP(s))
			}
			if len(ips) == 0 {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			return ips, nil
		},
		myIPs: func() []net.IP {
			var ips []net.IP
			for _, s := range h.MyIPs {
				ips = append(ips, net.ParseIP(s))
			}
			return ips
		},
		searchDomains: func() []string { return h.SearchDomains },
		pacLimit:      h.PACLimit,
		proxyLoopback: h.ProxyLoopback,
	}
	if !h.Now.IsZero() {
		hooks.now = func() time.Time { return h.Now }
	}
	d.hooks = hooks
}
