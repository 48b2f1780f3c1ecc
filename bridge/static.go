package bridge

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// Static returns a handler serving the files under dir, for example noVNC
// next to the bridge (websockify's --web). Paths cannot leave dir: ".."
// is cleaned away and symbolic links pointing outside dir are refused
// (the files are opened through os.Root). Names starting with a dot are
// not served. A directory is served through its index.html; without one
// it is 404 unless listings is true. It fails when dir cannot be opened.
func Static(dir string, listings bool) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return http.FileServer(http.FS(staticFS{fsys: root.FS(), listings: listings})), nil
}

type staticFS struct {
	fsys     fs.FS
	listings bool
}

func (s staticFS) Open(name string) (fs.File, error) {
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." {
			return nil, fs.ErrNotExist
		}
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if s.listings {
		return f, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		index, err := s.fsys.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fs.ErrNotExist
			}
			return nil, err
		}
		index.Close()
	}
	return f, nil
}
