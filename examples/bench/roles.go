//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Servers under test run as child processes of this same binary, so that
// their CPU and memory are their own and can be read from /proc. A child
// learns its role from WSPROXY_BENCH_ROLE and prints "ready ADDR" once it
// listens.
const roleEnv = "WSPROXY_BENCH_ROLE"

// roles are the servers this binary can become.
var roles = map[string]func(target string) (net.Listener, func(net.Listener) error, error){
	"echo":      func(string) (net.Listener, func(net.Listener) error, error) { return listenServe(serveEcho) },
	"echo-idle": func(string) (net.Listener, func(net.Listener) error, error) { return listenServe(serveEchoBuffered) },
	"relay-splice": func(target string) (net.Listener, func(net.Listener) error, error) {
		return listenServe(relayTo(target, spliceCopy))
	},
	"relay-copy": func(target string) (net.Listener, func(net.Listener) error, error) {
		return listenServe(relayTo(target, bufferCopy))
	},
}

// runRole is main for a child process.
func runRole(role string) {
	raiseFileLimit()
	startProfiling(role)
	start, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown role %q\n", role)
		os.Exit(2)
	}
	ln, serve, err := start(os.Getenv("WSPROXY_BENCH_TARGET"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		os.Exit(1)
	}
	fmt.Printf("ready %s\n", ln.Addr())
	if err := serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		os.Exit(1)
	}
}

func listenServe(handle func(net.Conn)) (net.Listener, func(net.Listener) error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	return ln, func(ln net.Listener) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
					time.Sleep(10 * time.Millisecond) // out of descriptors: wait, do not die
					continue
				}
				return err
			}
			go handle(c)
		}
	}, nil
}

// serveEcho is the TCP echo every relay scenario ends at: io.Copy from
// the *net.TCPConn to itself, which Linux splices (the bytes never enter
// user space), so the echo can never be the bottleneck; the bench
// measures it alone to show that.
func serveEcho(c net.Conn) {
	defer c.Close()
	_, _ = io.Copy(c, c)
}

// serveEchoBuffered echoes through a 4 KiB buffer. The many-connections
// scenario uses it: a splicing echo holds a pipe pair (two descriptors)
// for as long as a connection lives, and 8,000 idle connections would
// then exceed the file limit.
func serveEchoBuffered(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4<<10)
	_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
}

// A copier moves one direction of a reference relay.
type copier func(dst, src *net.TCPConn) error

// spliceCopy is io.Copy between two TCP connections, which Linux
// splices: the kernel's zero-copy, the limit of any relay.
func spliceCopy(dst, src *net.TCPConn) error {
	_, err := io.Copy(dst, src)
	return err
}

// bufferCopy reads into a 64 KiB buffer and writes from it (the wrappers
// hide ReadFrom and WriteTo, so nothing splices): the limit of a relay
// that must see the bytes to frame or unmask them, with the bridge's
// buffer size.
func bufferCopy(dst, src *net.TCPConn) error {
	buf := make([]byte, 64<<10)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	return err
}

// relayTo is a plain Go TCP relay to target, each direction moved by cp.
func relayTo(target string, cp copier) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		t, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer t.Close()
		client, tc := c.(*net.TCPConn), t.(*net.TCPConn)
		done := make(chan struct{})
		go func() {
			_ = cp(tc, client)
			tc.CloseWrite()
			close(done)
		}()
		_ = cp(client, tc)
		client.CloseWrite()
		<-done
	}
}

// child is a running server process.
type child struct {
	name string
	addr string
	cmd  *exec.Cmd
}

// startChild runs this binary (or another program when argv is given) as a
// server and waits for its address. For this binary the address comes from
// its "ready" line; for others, wait names the address to poll.
func startChild(name, role, target string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startChildFrom(self, name, role, target)
}

// startChildFrom is startChild with another build of this program (the
// -baseline bridge).
func startChildFrom(exe, name, role, target string) (*child, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "WSPROXY_BENCH_TARGET="+target)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stopProcess(cmd)
		return nil, fmt.Errorf("%s did not start: %v", name, err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !ok {
		stopProcess(cmd)
		return nil, fmt.Errorf("%s: unexpected first line %q", name, line)
	}
	return &child{name: name, addr: addr, cmd: cmd}, nil
}

// startProgram runs an external program (websockify, tinyproxy, squid) and
// waits until addr accepts connections.
func startProgram(name, addr string, argv ...string) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var errOut strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &errOut
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitTCP(addr, 30*time.Second); err != nil {
		stopProcess(cmd)
		return nil, fmt.Errorf("%s not listening on %s: %v: %s", name, addr, err, errOut.String())
	}
	return &child{name: name, addr: addr, cmd: cmd}, nil
}

func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *child) stop() { stopProcess(c.cmd) }

func stopProcess(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// rssKiB reads the resident memory of a process from /proc.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib)
			return kib, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuSeconds reads the user and system CPU time of a process and of its
// children already waited for, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (utime is field 14 of the whole line).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks float64
	for _, s := range f[11:15] { // utime, stime, cutime, cstime
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return ticks / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// raiseFileLimit lifts the soft open-files limit to the hard one: a bridged
// connection holds two descriptors.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
