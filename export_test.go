package wsproxy

// Hooks that let black-box tests run without touching the process
// environment or the machine's proxy settings.

// SetTestEnv makes d read proxy variables from env instead of the process
// environment and skip the operating system's settings.
func SetTestEnv(d *Dialer, env map[string]string) {
	d.getenv = func(k string) string { return env[k] }
	d.ignoreOS = true
}

// ProxyFromEnv exposes the environment look-up with a given environment.
var ProxyFromEnv = proxyFromEnv
