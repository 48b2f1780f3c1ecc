package bridge_test

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// TestListenUnix: a client reaches the target through the socket file,
// behind the sniffing Listener; the file has the mode asked for, and
// Close removes it.
func TestListenUnix(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("socket file modes are not enforced on Windows")
	}
	sock := filepath.Join(t.TempDir(), "bridge.sock")
	inner, err := bridge.ListenUnix(sock, 0o660)
	require.NoError(t, err)
	st, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSocket, st.Mode().Type())
	assert.Equal(t, fs.FileMode(0o660), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(sock))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the temporary directory is gone")

	l, err := bridge.NewListener(inner, &bridge.ListenerOptions{Logger: slog0(t)})
	require.NoError(t, err)
	assert.Equal(t, sock, l.Addr().String())
	h := &bridge.Handler{Resolver: bridge.FixedTarget{Address: peertest.EchoServer(t)}, Logger: slog0(t)}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialUnix(t, ctx, sock)
	echoCheck(t, ctx, c, "through the socket file")
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

	require.NoError(t, srv.Close())
	<-done
	require.NoError(t, h.Shutdown(ctx))
	_, err = os.Lstat(sock)
	assert.ErrorIs(t, err, fs.ErrNotExist, "Close removes the socket file")
}

// TestListenUnixExistingFile: a stale socket is replaced, a live one
// refused with ErrSocketInUse, and a file that is not a socket is left
// alone.
func TestListenUnixExistingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	require.NoError(t, err)
	ul.SetUnlinkOnClose(false)
	require.NoError(t, ul.Close())
	l, err := bridge.ListenUnix(stale, 0o600)
	require.NoError(t, err, "a stale socket file is replaced")

	_, err = bridge.ListenUnix(stale, 0o600)
	require.ErrorIs(t, err, bridge.ErrSocketInUse)
	require.NoError(t, l.Close())

	regular := filepath.Join(dir, "notes.txt")
	peertest.WriteFile(t, regular, "keep me", 0o644)
	_, err = bridge.ListenUnix(regular, 0o600)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a socket")
	b, err := os.ReadFile(regular)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
}
