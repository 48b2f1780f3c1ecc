// Command wsbridge is a WebSocket-to-TCP bridge with websockify's command
// line: a drop-in replacement that runs as one process, with the bridge
// package's protections (no open relay, Origin checks, limits).
//
//	wsbridge 6080 localhost:5900
//	wsbridge --web /usr/share/novnc --cert self.pem [::]:6080 [::1]:5900
//	wsbridge --token-plugin TokenFile --token-source /etc/wsbridge/tokens 6080
//
// SIGINT and SIGTERM stop accepting connections and give open ones
// ten seconds to finish before closing them with 1001 (a second signal
// closes them at once); with --drain-delay, /readyz turns 503 at once and
// the listener keeps accepting that long first. SIGHUP, like any change to
// the --cert/--key files, reads the certificate again for new connections.
// docs/websockify-compat.md compares the options with websockify's;
// docs/operations.md describes running several instances behind a load
// balancer.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	daemon.Ready(err) // a -D child that failed before listening tells its parent why
	if errors.Is(err, errHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsbridge: %v\n", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down gracefully. ready, when not
// nil, is called with the listening address.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if parent, err := o.legacy.detach(o.logFile); err != nil || parent {
		return err // -D: the child serves; the parent exits with its verdict
	}
	defer o.legacy.cleanup()
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	logOut := stderr
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := newLogger(o.logFormat, logOut, level)

	h, err := buildHandler(o, log)
	if err != nil {
		return err
	}
	defer closeTokenStore(h.Resolver)
	h.OpenTap = o.legacy.openTap(stderr, log)
	o.edge.apply(h)
	lopts := &bridge.ListenerOptions{Logger: log}
	o.legacy.listenerOptions(lopts)
	if o.cert != "" {
		var certs *bridge.CertReloader
		if lopts.TLSConfig, certs, err = serverTLS(o, log); err != nil {
			return err
		}
		waitCert := watchCert(ctx, certs, log)
		defer func() { stopRun(); waitCert() }()
	}
	var metrics *metricsServer
	if o.metricsListen != "" {
		if metrics, err = startMetrics(o.metricsListen, h, log); err != nil {
			o.legacy.ready(err)
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		defer metrics.stop() // after the last connection: /readyz and /metrics answer while draining
	}
	ls, err := o.edge.listen(o.listen, lopts)
	o.legacy.ready(err)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           o.legacy.wrapRunOnce(h, stopRun),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	for _, l := range ls {
		log.Info("wsbridge: listening", "addr", addrString(l.Addr()), "target", describeTarget(o), "tls", o.cert != "", "web", o.web,
			"proxy_protocol", o.edge.proxyProtocol)
	}
	if ready != nil {
		ready(ls[0].Addr())
	}
	serveErrs := serveAll(srv, ls)

	lifetime := make(chan string, 1)
	if o.timeout > 0 || o.idleTimeout > 0 {
		go watchLifetime(ctx, h, o.timeout, o.idleTimeout, lifetime)
	}

	var reason string
	select {
	case err := <-serveErrs:
		_ = srv.Close()
		for range len(ls) - 1 {
			<-serveErrs
		}
		return err
	case <-ctx.Done():
	case reason = <-lifetime:
	}
	shutdown(log, h, srv, reason, o.drainDelay)
	for range ls {
		<-serveErrs
	}
	log.Info("wsbridge: stopped", "stats", h.Stats().String())
	return nil
}

func describeTarget(o *options) string {
	switch {
	case o.unixTarget != "":
		return "unix:" + o.unixTarget
	case o.tokenPlugin == "TokenRedis":
		return o.tokenPlugin + ":" + redisSourceForLog(o.tokenSource)
	case o.tokenPlugin != "":
		return o.tokenPlugin + ":" + o.tokenSource
	}
	return o.target
}

// buildHandler turns the options into a bridge.Handler.
func buildHandler(o *options, log *slog.Logger) (*bridge.Handler, error) {
	h := &bridge.Handler{
		Logger:            log,
		HeartbeatInterval: o.heartbeat,
		IdleTimeout:       o.connIdle,
		MaxConns:          o.maxConns,
		AllowedOrigins:    o.allowOrigins,
	}
	switch {
	case o.unixTarget != "":
		h.Resolver = bridge.FixedTarget{Network: "unix", Address: o.unixTarget}
	case o.target != "":
		h.Resolver = bridge.FixedTarget{Address: o.target}
	default:
		r, err := tokenResolver(o, log)
		if err != nil {
			return nil, err
		}
		h.Resolver = r
	}
	if o.sslTarget {
		cfg := &tls.Config{InsecureSkipVerify: o.sslTargetInsecure}
		if o.sslTargetCA != "" {
			pool, err := loadPool(o.sslTargetCA)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = pool
		}
		h.TargetTLS = cfg
	}
	switch o.authPlugin {
	case "":
	case "BasicHTTPAuth":
		user, pass, ok := strings.Cut(o.authSource, ":")
		if !ok || user == "" {
			return nil, errors.New("BasicHTTPAuth needs --auth-source user:password")
		}
		h.BasicAuth = bridge.BasicAuthPassword(user, pass)
	case "ExpectOrigin":
		origins := strings.Fields(o.authSource)
		if len(origins) == 0 {
			return nil, errors.New("ExpectOrigin needs --auth-source with space-separated origins")
		}
		h.AllowedOrigins = append(h.AllowedOrigins, origins...)
	case "ClientCertCNAuth":
		cns := strings.Fields(o.authSource)
		if len(cns) == 0 || !o.verify {
			return nil, errors.New("ClientCertCNAuth needs --auth-source with common names and --verify-client")
		}
		h.ClientCertCNs = cns
	default:
		return nil, fmt.Errorf("unknown --auth-plugin %q (BasicHTTPAuth, ExpectOrigin, ClientCertCNAuth)", o.authPlugin)
	}
	if o.web != "" {
		static, err := bridge.Static(o.web, o.webListing)
		if err != nil {
			return nil, fmt.Errorf("--web: %w", err)
		}
		h.Static = static
	}
	return h, nil
}

func tokenResolver(o *options, log *slog.Logger) (*bridge.TokenResolver, error) {
	r := &bridge.TokenResolver{HostToken: o.hostToken}
	switch o.tokenPlugin {
	case "TokenFile", "ReadOnlyTokenFile":
		if _, err := os.Stat(o.tokenSource); err != nil {
			return nil, fmt.Errorf("--token-source: %w", err)
		}
		r.Store = &bridge.TokenFile{Path: o.tokenSource, ReadOnly: o.tokenPlugin == "ReadOnlyTokenFile", Logger: log}
		// The operator writes the token file: its targets are trusted
		// unless --allow-target narrows them.
		r.Allow = bridge.AllowAll()
	case "TokenRedis":
		store, err := bridge.ParseRedisSource(o.tokenSource)
		if err != nil {
			return nil, err
		}
		r.Store = store
		routeRedisLogs(log)
		if len(o.allowTargets) == 0 {
			return nil, errors.New("TokenRedis needs --allow-target: whoever can write to Redis would otherwise choose any target (use --allow-target '0.0.0.0/0:*' to accept that)")
		}
	case "JWTTokenApi":
		store, err := jwtStore(o, log)
		if err != nil {
			return nil, err
		}
		r.Store = store
		// Whoever holds the key chooses targets: trusted as the operator
		// is, unless --allow-target narrows them.
		r.Allow = bridge.AllowAll()
	default:
		return nil, fmt.Errorf("unknown --token-plugin %q (TokenFile, ReadOnlyTokenFile, TokenRedis, JWTTokenApi)", o.tokenPlugin)
	}
	if len(o.allowTargets) > 0 {
		allow, err := bridge.ParseAllowList(o.allowTargets...)
		if err != nil {
			return nil, err
		}
		r.Allow = allow
	}
	return r, nil
}

// serverTLS loads --cert/--key (the key may be in the certificate file,
// as websockify allows) into a reloader, and --verify-client/--cafile.
func serverTLS(o *options, log *slog.Logger) (*tls.Config, *bridge.CertReloader, error) {
	certs, err := bridge.NewCertReloader(o.cert, o.key, log)
	if err != nil {
		return nil, nil, fmt.Errorf("--cert/--key: %w", err)
	}
	cfg := &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	if o.verify {
		pool, err := loadPool(o.caFile)
		if err != nil {
			return nil, nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, certs, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}
