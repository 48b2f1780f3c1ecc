// Package daemon detaches a command-line program from its terminal, the
// way `wsbridge -D` does: the program re-executes itself in a new session
// with its standard streams on /dev/null (or a log file), the child reports
// when it is ready (or why it failed) through a pipe, and the parent exits
// with the child's verdict. A re-exec rather than fork(2), since a Go
// program cannot fork safely.
//
// Usage in main:
//
//	if daemonize {
//		parent, err := daemon.Detach(daemon.Options{LogFile: logFile, PIDFile: pidFile})
//		if err != nil { fatal(err) }
//		if parent { os.Exit(0) } // the child is serving
//	}
//	l, err := net.Listen(...)
//	daemon.Ready(err) // no-op unless running as a detached child
package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// envChild marks the re-executed child; its value is the ready pipe's
// file descriptor number.
const envChild = "WSPROXY_DAEMON_CHILD"

// ReadyTimeout bounds how long the parent waits for the child's Ready.
var ReadyTimeout = 30 * time.Second

// Options configure Detach.
type Options struct {
	// LogFile receives the child's standard output and error, appended;
	// empty means /dev/null. Relative paths are made absolute first (the
	// child's working directory is "/").
	LogFile string
	// PIDFile, when set, is written by the child with its process ID
	// (atomically) before Ready reports success; RemovePIDFile deletes it.
	PIDFile string
	// Args is the command line to re-execute; nil means os.Args.
	Args []string
}

// IsChild reports whether this process is a detached child started by
// Detach.
func IsChild() bool { return os.Getenv(envChild) != "" }

// Detach re-executes the program as a detached child and waits until the
// child calls Ready. It returns parent == true in the original process
// (which should exit 0: the child is serving) and parent == false in the
// child, which goes on and must call Ready once it listens. The parent's
// error carries the child's failure (for example "address already in
// use") or says that the child exited before it was ready. Not supported
// on Windows.
func Detach(o Options) (parent bool, err error) {
	if IsChild() {
		if o.PIDFile != "" {
			if err := WritePIDFile(o.PIDFile); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	args := o.Args
	if args == nil {
		args = os.Args
	}
	exe, err := os.Executable()
	if err != nil {
		return true, fmt.Errorf("daemon: %w", err)
	}
	return true, startChild(exe, args, absPath(o.LogFile))
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// waitReady reads the child's verdict from the ready pipe.
func waitReady(r *os.File, exited <-chan error) error {
	type result struct {
		msg string
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, 4096))
		got <- result{string(b), err}
	}()
	select {
	case res := <-got:
		msg := strings.TrimSpace(res.msg)
		switch {
		case msg == "ok":
			return nil
		case msg != "":
			return errors.New(msg)
		default:
			err := <-exited
			return fmt.Errorf("daemon: the child exited before it was ready: %v", err)
		}
	case <-time.After(ReadyTimeout):
		return fmt.Errorf("daemon: the child was not ready after %v", ReadyTimeout)
	}
}

// Ready reports the child's start-up result to the waiting parent: nil
// means serving, an error is printed by the parent, which exits non-zero
// (the child should exit too). It does nothing outside a detached child
// and only the first call counts.
func Ready(err error) {
	fdStr := os.Getenv(envChild)
	if fdStr == "" {
		return
	}
	os.Unsetenv(envChild)
	fd, convErr := strconv.Atoi(fdStr)
	if convErr != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "daemon-ready")
	if f == nil {
		return
	}
	defer f.Close()
	if err != nil {
		fmt.Fprintf(f, "%v\n", err)
		return
	}
	fmt.Fprintln(f, "ok")
}

// WritePIDFile writes this process's ID to path through a temporary file
// and a rename, so a reader never sees a half-written file. Detach calls it
// in the child; a program running in the foreground may call it itself.
func WritePIDFile(path string) error {
	path = absPath(path)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pid-*")
	if err != nil {
		return fmt.Errorf("daemon: pid file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("daemon: pid file: %w", err)
	}
	return nil
}

// RemovePIDFile deletes the PID file if it still holds this process's ID
// (a newer instance may have replaced it). Call it on shutdown.
func RemovePIDFile(path string) {
	if path == "" {
		return
	}
	path = absPath(path)
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
