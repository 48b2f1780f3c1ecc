package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

var errHelp = errors.New("help requested")

// options is the parsed command line.
type options struct {
	listen string // host:port to listen on ("" host: every interface)
	target string // host:port, "" with a token plugin or a Unix target

	tokenPlugin, tokenSource string
	hostToken                bool
	unixTarget               string
	sslTarget                bool
	sslTargetInsecure        bool
	sslTargetCA              string
	allowTargets             []string

	web        string
	webListing bool
	cert, key  string
	verify     bool // --verify-client
	caFile     string

	heartbeat   time.Duration
	idleTimeout time.Duration // websockify's: exit after this long without connections
	timeout     time.Duration // websockify's: stop accepting this long after start
	connIdle    time.Duration // close one connection idle this long
	maxConns    int

	authPlugin, authSource string
	allowOrigins           []string

	verbose   bool
	logFile   string
	logFormat string // "text" or "json"

	metricsListen string        // host:port for /metrics, /healthz, /readyz ("": none)
	drainDelay    time.Duration // on SIGTERM: not ready, still accepting, this long

	legacy legacyOptions // legacy.go: sniffing, Flash policy, recording, daemon
	edge   edgeOptions   // edge.go: PROXY protocol, trusted proxies, Unix listening
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error {
	for item := range strings.FieldsSeq(strings.ReplaceAll(v, ",", " ")) {
		*l = append(*l, item)
	}
	return nil
}

// secondsFlag takes websockify's whole seconds (and Go durations).
type secondsFlag struct{ d *time.Duration }

func (s secondsFlag) String() string {
	if s.d == nil || *s.d == 0 {
		return "0"
	}
	return s.d.String()
}

func (s secondsFlag) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 {
			return errors.New("must not be negative")
		}
		*s.d = time.Duration(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("want seconds, got %q", v)
	}
	*s.d = d
	return nil
}

const usage = `Usage: wsbridge [options] [source_addr:]source_port [target_addr:target_port]
       wsbridge --unix-listen FILE [options] [[source_addr:]source_port] [target_addr:target_port]

A WebSocket-to-TCP bridge compatible with websockify's command line.
Browsers connect to ws://source/ (or wss:// with --cert) and the bridge
relays bytes to the target: fixed on the command line, a Unix socket
(--unix-target) or looked up by token (--token-plugin). IPv6 addresses go
in brackets: [::1]:6080 [::1]:5900.

Options:
`

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wsbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.tokenPlugin, "token-plugin", "", "look targets up by token: `TokenFile`, ReadOnlyTokenFile, TokenRedis or JWTTokenApi")
	fs.StringVar(&o.tokenSource, "token-source", "", "the token plugin's `source`: a file or directory of \"token: host:port\" lines (TokenFile);\n"+
		"host[:port[:db[:password[:namespace]]]] or a URL redis://[user:pass@]host[:port][/db], rediss://... (TLS; ?ca_file=,cert_file=,key_file=),\n"+
		"redis+sentinel://[user:pass@]h1:26379,h2:26379/master[/db], redis+cluster://h1:6379,h2:6379, options ?namespace=NS&timeout=SECONDS (TokenRedis);\n"+
		"a key file, PEM public key or base64url secret, for tokens that are JWTs with host and port claims (JWTTokenApi)")
	fs.BoolVar(&o.hostToken, "host-token", false, "take the token from the Host header instead of ?token=")
	fs.Var((*listFlag)(&o.allowTargets), "allow-target", "`CIDR:ports` token targets may reach, e.g. 10.0.0.0/8:5900-5999 (repeatable; required with TokenRedis, default for token files and JWTs: any)")
	fs.StringVar(&o.unixTarget, "unix-target", "", "relay to the Unix socket `file` instead of a TCP target")
	fs.BoolVar(&o.sslTarget, "ssl-target", false, "connect to the target with TLS (its certificate is verified; see --ssl-target-insecure)")
	fs.BoolVar(&o.sslTargetInsecure, "ssl-target-insecure", false, "with --ssl-target, do not verify the target's certificate (websockify's behaviour)")
	fs.StringVar(&o.sslTargetCA, "ssl-target-ca", "", "with --ssl-target, trust the CA certificates in this PEM `file` instead of the system's")
	fs.StringVar(&o.web, "web", "", "serve the files in `dir` on the same port (for example noVNC)")
	fs.BoolVar(&o.webListing, "web-listing", false, "with --web, list directories that have no index.html")
	fs.StringVar(&o.cert, "cert", "", "TLS certificate `file` (PEM); enables wss:// and https:// on the same port as plain connections")
	fs.StringVar(&o.key, "key", "", "TLS private key `file` (PEM); default: the --cert file")
	fs.BoolVar(&o.verify, "verify-client", false, "require a TLS client certificate signed by --cafile")
	fs.StringVar(&o.caFile, "cafile", "", "PEM `file` of CA certificates for --verify-client")
	fs.Var(secondsFlag{&o.heartbeat}, "heartbeat", "ping clients every `N` seconds and drop those that do not answer (0: off)")
	fs.Var(secondsFlag{&o.idleTimeout}, "idle-timeout", "exit after `N` seconds without open connections (0: never), as websockify")
	fs.Var(secondsFlag{&o.timeout}, "timeout", "stop accepting `N` seconds after start and exit once open connections end (0: never), as websockify")
	fs.Var(secondsFlag{&o.connIdle}, "conn-idle-timeout", "close a connection after `N` seconds without data either way (0: never)")
	fs.IntVar(&o.maxConns, "max-conns", 0, "refuse (503) connections beyond this many at once (0: 1024, -1: no limit)")
	fs.StringVar(&o.authPlugin, "auth-plugin", "", "`plugin`: BasicHTTPAuth, ExpectOrigin or ClientCertCNAuth")
	fs.StringVar(&o.authSource, "auth-source", "", "the auth plugin's `source`: user:password, space-separated origins, or space-separated common names")
	fs.Var((*listFlag)(&o.allowOrigins), "allow-origin", "browser `origin` allowed besides same-origin pages (repeatable; \"*\" for any)")
	fs.BoolVar(&o.verbose, "v", false, "verbose: debug logging")
	fs.BoolVar(&o.verbose, "verbose", false, "same as -v")
	fs.StringVar(&o.logFile, "log-file", "", "append logs to `file` instead of standard error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log line `format`: text (key=value) or json (one object per line)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics and the /healthz and /readyz checks on this `host:port` (a separate plain-HTTP listener; keep it private)")
	fs.Var(secondsFlag{&o.drainDelay}, "drain-delay", "on SIGTERM, answer /readyz with 503 but keep accepting for `N` seconds so a load balancer can notice, then shut down (0: at once)")
	o.legacy.register(fs)
	o.edge.register(fs)
	return fs
}

// parseFlags parses websockify's command line. Options may come before,
// between or after the positional arguments, as with websockify.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if err := o.finish(pos); err != nil {
		fmt.Fprintf(stderr, "wsbridge: %v\n", err)
		fs.Usage()
		return nil, err
	}
	return o, nil
}

func (o *options) finish(pos []string) error {
	if !o.edge.takeSource(o, pos) {
		pos = append([]string{""}, pos...) // --unix-listen only
	}
	if len(pos) == 0 {
		return errors.New("missing source port")
	}
	if pos[0] != "" {
		listen, err := parseListen(pos[0])
		if err != nil {
			return err
		}
		o.listen = listen
	}
	switch {
	case len(pos) > 2:
		return fmt.Errorf("too many arguments: %q", pos[2:])
	case len(pos) == 2:
		if o.tokenPlugin != "" || o.unixTarget != "" {
			return errors.New("a target address cannot be combined with --token-plugin or --unix-target")
		}
		host, port, err := net.SplitHostPort(pos[1])
		if err != nil || host == "" {
			return fmt.Errorf("target %q: want host:port, IPv6 in brackets ([::1]:5900)", pos[1])
		}
		if err := checkPort(port); err != nil {
			return fmt.Errorf("target %q: %w", pos[1], err)
		}
		o.target = pos[1]
	default:
		if o.tokenPlugin == "" && o.unixTarget == "" {
			return errors.New("missing target: give target_addr:target_port, --token-plugin or --unix-target")
		}
	}
	if o.tokenPlugin != "" && o.unixTarget != "" {
		return errors.New("--token-plugin and --unix-target exclude each other")
	}
	if o.tokenPlugin != "" && o.tokenSource == "" {
		return errors.New("--token-plugin needs --token-source")
	}
	if o.hostToken && o.tokenPlugin == "" {
		return errors.New("--host-token needs --token-plugin")
	}
	if o.authSource != "" && o.authPlugin == "" {
		return errors.New("--auth-source needs --auth-plugin")
	}
	if o.key != "" && o.cert == "" {
		return errors.New("--key needs --cert")
	}
	if o.verify && (o.cert == "" || o.caFile == "") {
		return errors.New("--verify-client needs --cert and --cafile")
	}
	if (o.sslTargetInsecure || o.sslTargetCA != "") && !o.sslTarget {
		return errors.New("--ssl-target-insecure and --ssl-target-ca need --ssl-target")
	}
	if err := o.edge.check(o); err != nil {
		return err
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if o.metricsListen != "" {
		if _, _, err := net.SplitHostPort(o.metricsListen); err != nil {
			return fmt.Errorf("--metrics-listen %q: want host:port, IPv6 in brackets", o.metricsListen)
		}
	}
	return o.legacy.check(o)
}

// parseListen turns websockify's [source_addr:]source_port into host:port.
func parseListen(s string) (string, error) {
	if !strings.Contains(s, ":") {
		if err := checkPort(s); err != nil {
			return "", fmt.Errorf("source %q: %w", s, err)
		}
		return ":" + s, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("source %q: want [addr:]port, IPv6 in brackets ([::1]:6080)", s)
	}
	if err := checkPort(port); err != nil {
		return "", fmt.Errorf("source %q: %w", s, err)
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(p string) error {
	if _, err := strconv.ParseUint(p, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", p)
	}
	return nil
}
