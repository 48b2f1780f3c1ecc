package wsproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// On Linux the desktop named by XDG_CURRENT_DESKTOP decides: KDE's
// kioslaverc, or GNOME's settings through gsettings for GNOME and the
// desktops that share its schema. Elsewhere (servers, containers, other
// desktops) there are no OS settings: the environment is the only source.

func init() {
	sysLookup = linuxSettings
}

func linuxSettings(ctx context.Context, getenv func(string) string) (*systemSettings, error) {
	switch desktopKind(getenv("XDG_CURRENT_DESKTOP"), getenv("DESKTOP_SESSION"), getenv("KDE_FULL_SESSION")) {
	case SourceKDE:
		for _, path := range kioslavercPaths(getenv) {
			f, err := os.Open(path)
			if err != nil {
				continue
			}
			s, err := parseKioslaverc(f, getenv)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			s.From = path
			return s, nil
		}
		return nil, nil
	case SourceGNOME:
		bin, err := exec.LookPath("gsettings")
		if err != nil {
			return nil, nil // no GSettings: nothing to read
		}
		return gnomeSettings(ctx, bin, nil)
	}
	return nil, nil
}
