package bridge

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// TokenFile is a TokenStore reading websockify's token files: lines
// "token: host:port" (a colon and white space separate the two), blank
// lines and lines starting with # ignored. Path is a file or a directory
// whose every regular file (names starting with a dot excepted) is read.
//
// Unless ReadOnly, each Lookup checks the files' names, sizes and
// modification times and reloads them when anything changed, so tokens
// can be added and removed while the bridge runs (websockify's TokenFile;
// ReadOnly is its ReadOnlyTokenFile, loaded once). A line that does not
// parse is logged and skipped; when a reload fails (a file unreadable),
// the previous tokens stay in use and the failure is logged.
type TokenFile struct {
	// Path is the token file or directory.
	Path string
	// ReadOnly loads the files once, on the first Lookup.
	ReadOnly bool
	// Logger receives syntax errors and reload failures; nil means
	// slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	loaded  bool
	sig     string
	targets map[string]string
}

// Lookup implements TokenStore.
func (f *TokenFile) Lookup(_ context.Context, token string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded || !f.ReadOnly {
		if err := f.reload(); err != nil {
			if !f.loaded {
				return "", err
			}
			f.logger().Warn("bridge: token file reload failed, keeping the previous tokens", "path", f.Path, "err", err)
		}
	}
	addr, ok := f.targets[token]
	if !ok {
		return "", ErrUnknownToken
	}
	return addr, nil
}

func (f *TokenFile) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

// files lists the token files and a signature of their state.
func (f *TokenFile) files() ([]string, string, error) {
	st, err := os.Stat(f.Path)
	if err != nil {
		return nil, "", fmt.Errorf("token file: %w", err)
	}
	var names []string
	var sig strings.Builder
	add := func(path string, st fs.FileInfo) {
		names = append(names, path)
		fmt.Fprintf(&sig, "%s\x00%d\x00%d\n", path, st.Size(), st.ModTime().UnixNano())
	}
	if !st.IsDir() {
		add(f.Path, st)
		return names, sig.String(), nil
	}
	entries, err := os.ReadDir(f.Path)
	if err != nil {
		return nil, "", fmt.Errorf("token directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(f.Path, e.Name())
		st, err := os.Stat(p) // follows links
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		add(p, st)
	}
	slices.Sort(names)
	return names, sig.String(), nil
}

func (f *TokenFile) reload() error {
	names, sig, err := f.files()
	if err != nil {
		return err
	}
	if f.loaded && sig == f.sig {
		return nil
	}
	targets := make(map[string]string)
	for _, name := range names {
		if err := parseTokenFile(name, targets, f.logger()); err != nil {
			return err
		}
	}
	f.targets, f.sig, f.loaded = targets, sig, true
	return nil
}

func parseTokenFile(name string, into map[string]string, log *slog.Logger) error {
	file, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		token, target, ok := splitTokenLine(line)
		// Found by FuzzTokenFile: a target that is not host:port ("a: b")
		// was taken as it was; it is a syntax error, as for RedisTokens.
		if _, _, err := net.SplitHostPort(target); !ok || err != nil {
			log.Warn("bridge: token file syntax error, line skipped (want \"token: host:port\")", "file", name, "line", n)
			continue
		}
		into[token] = target
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("token file %s: %w", name, err)
	}
	return nil
}

// splitTokenLine splits "token: host:port" at the first colon followed by
// white space.
func splitTokenLine(line string) (token, target string, ok bool) {
	for i := 0; i+1 < len(line); i++ {
		if line[i] == ':' && (line[i+1] == ' ' || line[i+1] == '\t') {
			token, target = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
			return token, target, token != "" && target != ""
		}
	}
	return "", "", false
}
