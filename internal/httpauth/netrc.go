package httpauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// NetrcPath returns the netrc file to read: explicit when set, else
// $NETRC (read through getenv), else ~/.netrc (on Windows ~/_netrc when
// ~/.netrc does not exist). It returns "" when there is no home directory.
func NetrcPath(explicit string, getenv func(string) string) string {
	if explicit != "" {
		return explicit
	}
	if p := getenv("NETRC"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(home, ".netrc")
	if runtime.GOOS == "windows" {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(home, "_netrc")
		}
	}
	return p
}

// NetrcCredentials reads the netrc file at path and returns the login and
// password for host. A missing file means no credentials, not an error.
func NetrcCredentials(path, host string) (*Credentials, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseNetrc(string(data), host)
}

// ParseNetrc finds host's entry in a netrc file: the first "machine" whose
// name equals host (case-insensitively), else the "default" entry. It
// understands login, password, account (ignored) and macdef (skipped up to
// the next empty line); values may be double-quoted with backslash
// escapes, as curl allows. An entry with a login but no password gives an
// empty password. Errors never quote the file's contents.
func ParseNetrc(data, host string) (*Credentials, error) {
	var (
		found   *Credentials // the entry for host
		deflt   *Credentials
		cur     *Credentials // the entry being read, nil when skipped
		inEntry bool
	)
	toks, err := netrcTokens(data)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(toks); i++ {
		arg := func() (string, error) {
			if i+1 >= len(toks) || toks[i+1].macdef {
				return "", fmt.Errorf("netrc: %q without a value", toks[i].s)
			}
			i++
			return toks[i].s, nil
		}
		switch t := toks[i]; {
		case t.macdef:
			// a macro body, already skipped by the tokenizer
		case t.s == "machine":
			name, err := arg()
			if err != nil {
				return nil, err
			}
			if found != nil {
				return found, nil
			}
			cur, inEntry = nil, true
			if strings.EqualFold(name, host) {
				found = &Credentials{}
				cur = found
			}
		case t.s == "default":
			if found != nil {
				return found, nil
			}
			inEntry = true
			cur = nil
			if deflt == nil {
				deflt = &Credentials{}
				cur = deflt
			}
		case t.s == "login" || t.s == "password" || t.s == "account":
			v, err := arg()
			if err != nil {
				return nil, err
			}
			if !inEntry {
				return nil, fmt.Errorf("netrc: %q before any machine", t.s)
			}
			if cur != nil {
				switch t.s {
				case "login":
					cur.Username = v
				case "password":
					cur.Password = v
				}
			}
		case t.s == "macdef":
			if _, err := arg(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("netrc: unknown keyword at token %d", i+1)
		}
	}
	if found != nil {
		return found, nil
	}
	return deflt, nil
}

type netrcToken struct {
	s      string
	macdef bool // a skipped macro body
}

// netrcTokens splits a netrc file into white-space separated tokens, with
// double-quoted tokens unescaped and macro bodies (after "macdef name", up
// to an empty line) collapsed into one skipped token.
func netrcTokens(data string) ([]netrcToken, error) {
	var out []netrcToken
	i := 0
	for i < len(data) {
		c := data[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		if c == '#' { // comment to the end of the line
			for i < len(data) && data[i] != '\n' {
				i++
			}
			continue
		}
		var b strings.Builder
		if c == '"' {
			i++
			closed := false
			for i < len(data) {
				if data[i] == '\\' && i+1 < len(data) {
					switch n := data[i+1]; n {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(n)
					}
					i += 2
					continue
				}
				if data[i] == '"' {
					i++
					closed = true
					break
				}
				b.WriteByte(data[i])
				i++
			}
			if !closed {
				return nil, errors.New("netrc: unterminated quoted value")
			}
		} else {
			for i < len(data) && !strings.ContainsRune(" \t\r\n", rune(data[i])) {
				b.WriteByte(data[i])
				i++
			}
		}
		out = append(out, netrcToken{s: b.String()})
		// After "macdef name", skip the body up to an empty line.
		if n := len(out); n >= 2 && out[n-2].s == "macdef" && !out[n-2].macdef {
			end := strings.Index(data[i:], "\n\n")
			if end < 0 {
				i = len(data)
			} else {
				i += end + 2
			}
			out = append(out, netrcToken{macdef: true})
		}
	}
	return out, nil
}
