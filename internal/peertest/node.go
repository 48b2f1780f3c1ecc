package peertest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// NodeDir returns the module's testdata/node folder, which holds the
// package.json and package-lock.json of every Node package the tests run.
func NodeDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "node")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("peertest: no go.mod above the test's folder")
		}
		dir = parent
	}
}

var nodeModulesOnce sync.Map // dir -> *nodeModulesResult

type nodeModulesResult struct {
	once sync.Once
	err  error
}

// NodeModules makes sure testdata/node/node_modules matches the committed
// lock file, running `npm ci` when it does not, and returns the
// node_modules path. Test processes of different packages share the folder:
// a lock file in the temporary directory serialises their installs, and a
// stamp (the lock file's hash) lets later ones skip it. Without node or
// npm the test is skipped (or fails under WSPROXY_REQUIRE_PEERS=1).
func NodeModules(t testing.TB) string {
	t.Helper()
	Require(t, "node", "apt-get install -y nodejs")
	npm := Require(t, "npm", "apt-get install -y npm")
	dir := NodeDir(t)
	v, _ := nodeModulesOnce.LoadOrStore(dir, &nodeModulesResult{})
	r := v.(*nodeModulesResult)
	r.once.Do(func() { r.err = npmCI(npm, dir) })
	if r.err != nil {
		Missing(t, fmt.Sprintf("node packages in %s: %v", dir, r.err))
	}
	return filepath.Join(dir, "node_modules")
}

func npmCI(npm, dir string) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".wsproxy-installed")

	dirSum := sha256.Sum256([]byte(dir))
	lockPath := filepath.Join(os.TempDir(), "wsproxy-npm-"+hex.EncodeToString(dirSum[:8])+".lock")
	unlock, err := lockFile(lockPath, 5*time.Minute)
	if err != nil {
		return err
	}
	defer unlock()

	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return nil
	}
	cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	return os.WriteFile(stamp, []byte(want), 0o644)
}

// lockFile takes an exclusive lock by creating path, waiting while another
// process holds it; a lock older than stale is taken over (its holder
// died).
func lockFile(path string, stale time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(stale + time.Minute)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > stale {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s held too long", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
