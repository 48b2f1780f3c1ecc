// Listening on a Unix socket file (websockify's --unix-listen).

package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrSocketInUse is wrapped by ListenUnix's error when another process
// still serves the socket file.
var ErrSocketInUse = errors.New("bridge: Unix socket in use")

// ListenUnix listens on the Unix socket file path with permission bits
// perm (websockify's default is 0600: only the owner may connect). Wrap
// the result with NewListener, or hand it to http.Server.Serve directly:
// the Handler and the Listener accept any net.Listener.
//
// A file left at path by a process that died is removed first; a socket
// that still answers fails with ErrSocketInUse, and a path that is not a
// socket fails without being touched. The socket is created in a private
// directory next to path, given perm, then renamed into place, so nobody
// can connect before the mode is set. Close removes the file. Socket
// permissions are not enforced on Windows.
func ListenUnix(path string, perm fs.FileMode) (net.Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".wsb")
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, perm.Perm()); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	return &unixListener{UnixListener: l, path: path, addr: &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

// removeStaleSocket removes path when it is a socket nobody answers on.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen unix %s: %w", path, err)
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen unix %s: the file exists and is not a socket (%s); remove it or choose another path", path, st.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen unix %s: %w: another process accepts connections on it", path, ErrSocketInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listen unix %s: removing the stale socket: %w", path, err)
	}
	return nil
}

// unixListener removes its socket file when closed (net's own unlinking
// would aim at the temporary name).
type unixListener struct {
	*net.UnixListener
	path string
	addr *net.UnixAddr // the socket file's path, made once, shared by every connection
	once sync.Once
}

// Addr returns the socket file's path.
func (l *unixListener) Addr() net.Addr { return l.addr }

// Accept returns the next connection, whose LocalAddr is the socket
// file's path rather than the temporary name it was bound to.
func (l *unixListener) Accept() (net.Conn, error) {
	c, err := l.UnixListener.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &unixConn{UnixConn: c, local: l.addr}, nil
}

type unixConn struct {
	*net.UnixConn
	local net.Addr
}

func (c *unixConn) LocalAddr() net.Addr { return c.local }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}
