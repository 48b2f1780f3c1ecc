//go:build unix

package daemon_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsproxy/wsproxy/internal/daemon"
)

// The test binary doubles as the program being daemonized when
// DAEMON_TEST_DIR is set: it detaches, listens, reports ready, says hello
// to the first client and exits.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DAEMON_TEST_DIR"); dir != "" {
		os.Exit(fakeMain(dir))
	}
	goleak.VerifyTestMain(m)
}

func fakeMain(dir string) int {
	pidFile := filepath.Join(dir, "wsbridge.pid")
	parent, err := daemon.Detach(daemon.Options{LogFile: os.Getenv("DAEMON_TEST_LOG"), PIDFile: pidFile})
	if err != nil {
		fmt.Fprintln(os.Stderr, "detach:", err)
		return 1
	}
	if parent {
		return 0
	}
	defer daemon.RemovePIDFile(pidFile)
	if os.Getenv("DAEMON_TEST_FAIL") != "" {
		daemon.Ready(errors.New("listen tcp 127.0.0.1:1: bind: address already in use"))
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	daemon.Ready(err)
	if err != nil {
		return 1
	}
	fmt.Println("child listening on", l.Addr())
	if err := os.WriteFile(filepath.Join(dir, "addr"), []byte(l.Addr().String()), 0o644); err != nil {
		return 1
	}
	_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	c, err := l.Accept()
	if err != nil {
		return 1
	}
	_, _ = c.Write([]byte(fmt.Sprintf("hello from %d, stdin %s\n", os.Getpid(), stdinKind())))
	c.Close()
	return 0
}

func stdinKind() string {
	st, err := os.Stdin.Stat()
	if err != nil {
		return "?"
	}
	if st.Mode()&os.ModeCharDevice != 0 {
		return "char-device"
	}
	return st.Mode().String()
}

func runFake(t *testing.T, env ...string) (dir string, out []byte, err error) {
	t.Helper()
	dir = t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"DAEMON_TEST_DIR=" + dir}, env...)...)
	done := make(chan struct{})
	var runErr error
	go func() { out, runErr = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the parent did not exit")
	}
	return dir, out, runErr
}

func TestDetach(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "wsbridge.log")
	dir, out, err := runFake(t, "DAEMON_TEST_LOG="+logFile)
	if err != nil {
		t.Fatalf("parent: %v\n%s", err, out)
	}
	if len(out) != 0 {
		t.Errorf("parent printed %q; the child's output belongs in the log file", out)
	}
	// The parent exits only after the child is ready: its files exist now.
	pidText, err := os.ReadFile(filepath.Join(dir, "wsbridge.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	if sid, ok := sessionID(t, pid); ok && sid != pid {
		t.Errorf("child %d is in session %d, want its own", pid, sid)
	}
	var addr []byte
	for i := 0; i < 100; i++ {
		if addr, err = os.ReadFile(filepath.Join(dir, "addr")); err == nil && len(addr) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", string(addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hello, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("hello from %d, stdin char-device", pid); strings.TrimSpace(hello) != want {
		t.Errorf("child said %q, want %q (stdin on /dev/null)", hello, want)
	}
	// The child removes its PID file as it exits.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "wsbridge.pid")); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("PID file still there after the child exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(logFile)
	if !strings.Contains(string(log), "child listening on "+string(addr)) {
		t.Errorf("log file %q lacks the child's output", log)
	}
}

func TestDetachReportsChildFailure(t *testing.T) {
	t.Parallel()
	_, out, err := runFake(t, "DAEMON_TEST_FAIL=1")
	if err == nil {
		t.Fatalf("parent exited 0 although the child failed: %s", out)
	}
	if !strings.Contains(string(out), "address already in use") {
		t.Errorf("parent output %q lacks the child's reason", out)
	}
}

func TestReadyOutsideChildIsNoOp(t *testing.T) {
	t.Parallel()
	if daemon.IsChild() {
		t.Fatal("test process thinks it is a daemon child")
	}
	daemon.Ready(nil)
	daemon.Ready(errors.New("x"))
	daemon.RemovePIDFile("")
}

// sessionID reads a process's session from /proc (Linux); ok is false
// where there is no /proc.
func sessionID(t *testing.T, pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Logf("no /proc: session not checked: %v", err)
		return 0, false
	}
	// pid (comm) state ppid pgrp session ...; comm may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, err := strconv.Atoi(fields[3])
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return sid, true
}
