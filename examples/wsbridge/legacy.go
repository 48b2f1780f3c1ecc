package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/daemon"
)

// legacyOptions are the options of the legacy-protocol issue: one-port
// sniffing and Flash policy, recording and traffic display, and daemon
// mode. Hixie-75/76 and seq_num need no option: the Handler serves them.
type legacyOptions struct {
	sslOnly      bool
	peekTimeout  time.Duration
	flashDomains listFlag
	flashPorts   string
	noFlash      bool

	record      string
	recordLimit int64
	traffic     bool

	daemon  bool
	pidFile string
	runOnce bool
}

func (l *legacyOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.sslOnly, "ssl-only", false, "refuse plain (non-TLS) connections; needs --cert")
	fs.DurationVar(&l.peekTimeout, "peek-timeout", bridge.DefaultPeekTimeout, "close connections that send nothing for this `long` after connecting")
	fs.Var(&l.flashDomains, "flash-policy-domain", "`domain` allowed by the Flash cross-domain policy (repeatable; default \"*\")")
	fs.StringVar(&l.flashPorts, "flash-policy-ports", "*", "to-ports of the Flash cross-domain policy: \"*\", ports, ranges, commas")
	fs.BoolVar(&l.noFlash, "no-flash-policy", false, "do not answer <policy-file-request/> (treat it as plain HTTP)")
	fs.StringVar(&l.record, "record", "", "record each connection to `FILE`.<n> (n counts connections from 1) in noVNC's playback format")
	fs.Int64Var(&l.recordLimit, "record-limit", bridge.DefaultRecordLimit, "cap each recording at this many `bytes` (negative: no cap)")
	fs.BoolVar(&l.traffic, "traffic", false, "print websockify's per-frame traffic legend (} { > <) to standard error")
	fs.BoolVar(&l.daemon, "daemon", false, "run in the background: a new session, standard streams on /dev/null or --log-file")
	fs.BoolVar(&l.daemon, "D", false, "same as --daemon")
	fs.StringVar(&l.pidFile, "pid-file", "", "write the process ID to `FILE` (removed on exit)")
	fs.BoolVar(&l.runOnce, "run-once", false, "serve one WebSocket connection, then exit")
}

func (l *legacyOptions) check(o *options) error {
	if l.sslOnly && o.cert == "" {
		return errors.New("--ssl-only needs --cert")
	}
	if l.recordLimit != bridge.DefaultRecordLimit && l.record == "" {
		return errors.New("--record-limit needs --record")
	}
	return nil
}

// detach runs -D: it returns parent == true in the original process,
// which should exit 0 once the child has reported it listens. Without -D
// it writes --pid-file for this process.
func (l *legacyOptions) detach(logFile string) (parent bool, err error) {
	if !l.daemon {
		if l.pidFile != "" {
			return false, daemon.WritePIDFile(l.pidFile)
		}
		return false, nil
	}
	return daemon.Detach(daemon.Options{LogFile: logFile, PIDFile: l.pidFile})
}

// ready tells a waiting -D parent how the start went; a no-op otherwise.
func (l *legacyOptions) ready(err error) { daemon.Ready(err) }

// cleanup removes the PID file.
func (l *legacyOptions) cleanup() { daemon.RemovePIDFile(l.pidFile) }

// listenerOptions adds the sniffing options to the listener's.
func (l *legacyOptions) listenerOptions(lo *bridge.ListenerOptions) {
	lo.SSLOnly = l.sslOnly
	lo.PeekTimeout = l.peekTimeout
	lo.FlashPolicy = &bridge.FlashPolicy{Domains: l.flashDomains, Ports: l.flashPorts}
	lo.DisableFlashPolicy = l.noFlash
}

// openTap returns Handler.OpenTap for --record and --traffic, or nil.
func (l *legacyOptions) openTap(stderr io.Writer, log *slog.Logger) func(bridge.ConnInfo) (bridge.Tap, error) {
	var rec *bridge.Recorder
	var legend *bridge.TrafficLegend
	if l.record != "" {
		rec = bridge.NewRecorder(l.record, l.recordLimit)
		log.Info("wsbridge: recording each connection", "files", l.record+".<n>", "limit", l.recordLimit)
	}
	if l.traffic {
		legend = bridge.NewTrafficLegend(stderr)
	}
	if rec == nil && legend == nil {
		return nil
	}
	return func(ci bridge.ConnInfo) (bridge.Tap, error) {
		var taps []bridge.Tap
		if rec != nil {
			r, err := rec.Open()
			if err != nil {
				return nil, err
			}
			log.Debug("wsbridge: recording", "id", ci.ID, "file", r.Path())
			taps = append(taps, r)
		}
		if legend != nil {
			taps = append(taps, legend)
		}
		return bridge.Taps(taps...), nil
	}
}

// wrapRunOnce calls stop after the first WebSocket connection ends (the
// Handler's ServeHTTP returns when its relay does). Requests for static
// files do not count.
func (l *legacyOptions) wrapRunOnce(h http.Handler, stop context.CancelFunc) http.Handler {
	if !l.runOnce {
		return h
	}
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			once.Do(stop)
		}
	})
}
