package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzTokenFile feeds arbitrary content to TokenFile. It must not panic;
// every token maps to a "host:port" target, as RedisTokens requires of its
// values; and the tokens stay the same when comment and blank
// lines are added, when lines end in CRLF, and when the lines are spread
// over several files of a token directory. A line added at the end wins.
func FuzzTokenFile(f *testing.F) {
	for _, s := range []string{
		"# comment\n\nalpha: 127.0.0.1:5901\nbroken line\nbeta:\t[::1]:5902\n",
		"target1: localhost:5901\ntarget2: 10.0.0.2:5900\n",
		"a: h:1\r\nb: h:2\r\n", "a: h:1\na: h:2\n", "#a: h:1\n  # b: h:2\n\t\n", "a:b: h:1\n", "a:  h:1  \n",
		"a: garbage\n", "a: h:\n", "a: :1\n", "a: [::1]\n", ": h:1\n", "a:\n", "a: h:1\rb: h:2\n", "a: h:1\x00\n", "a: {\"host\": \"h:1\"}\n",
	} {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, content string, perFile uint8) {
		w := &tokenFiles{t: t}
		got, err := w.load(map[string]string{"tokens": content})
		if err != nil {
			// The only reason to fail: a line longer than the scanner's
			// buffer.
			if !errors.Is(err, bufio.ErrTooLong) {
				t.Fatalf("%q: %v", content, err)
			}
			return
		}
		for token, target := range got {
			if token == "" || token != strings.TrimSpace(token) || token[0] == '#' || strings.Contains(token, "\n") {
				t.Fatalf("%q: bad token %q", content, token)
			}
			// The rule RedisTokens applies to its plain values.
			if _, _, err := net.SplitHostPort(target); err != nil || target != strings.TrimSpace(target) {
				t.Fatalf("%q: token %q maps to %q, not a host:port target (%v)", content, token, target, err)
			}
		}

		lines := strings.SplitAfter(content, "\n")
		for _, l := range lines {
			if len(l) > 60_000 {
				return // the variants below could cross the line limit
			}
		}
		same := func(what string, files map[string]string) {
			t.Helper()
			other, err := w.load(files)
			if err != nil || !maps.Equal(got, other) {
				t.Fatalf("%q %s: %v (%v), want %v", content, what, other, err, got)
			}
		}

		// Comments and blank lines change nothing, nor do CRLF endings.
		var commented strings.Builder
		for _, l := range lines {
			commented.WriteString("#" + strings.TrimRight(l, "\n") + "\n \t\n\n" + l)
		}
		same("with comments and blank lines", map[string]string{"tokens": commented.String()})
		same("with CRLF", map[string]string{"tokens": strings.ReplaceAll(content, "\n", "\r\n")})

		// Spread over a directory, read in name order: later files win
		// as later lines do.
		files := map[string]string{}
		n := int(perFile)%4 + 1
		for i := 0; i < len(lines); i += n {
			files[fmt.Sprintf("part%04d", i)] = strings.Join(lines[i:min(i+n, len(lines))], "")
		}
		same(fmt.Sprintf("in files of %d lines", n), files)

		// A line added at the end is taken, and overrides.
		for token := range got {
			want := maps.Clone(got)
			want[token] = "192.0.2.1:9"
			more, err := w.load(map[string]string{"tokens": content + "\n" + token + ": 192.0.2.1:9\n"})
			if err != nil || !maps.Equal(more, want) {
				t.Fatalf("%q with %q redefined: %v (%v), want %v", content, token, more, err, want)
			}
			break
		}
	})
}

// tokenFiles writes token files under one temporary directory.
type tokenFiles struct {
	t   *testing.T
	dir string
	n   int
}

// load writes files (one: a token file; several: a token directory) and
// returns the tokens a TokenFile reads from them.
func (w *tokenFiles) load(files map[string]string) (map[string]string, error) {
	w.t.Helper()
	if w.dir == "" {
		w.dir = w.t.TempDir()
	}
	w.n++
	path := filepath.Join(w.dir, strconv.Itoa(w.n))
	dir := path
	if len(files) > 1 {
		if err := os.Mkdir(dir, 0o700); err != nil {
			w.t.Fatal(err)
		}
	} else {
		dir = w.dir
	}
	for name, content := range files {
		if len(files) == 1 {
			name = filepath.Base(path)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			w.t.Fatal(err)
		}
	}
	tf := &TokenFile{Path: path, ReadOnly: true, Logger: slog.New(slog.DiscardHandler)}
	if _, err := tf.Lookup(context.Background(), ""); !errors.Is(err, ErrUnknownToken) {
		return nil, err
	}
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return tf.targets, nil
}
