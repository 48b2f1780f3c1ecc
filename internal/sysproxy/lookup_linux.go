package sysproxy

import (
	"context"
	"os/exec"
)

// On Linux the desktop named by XDG_CURRENT_DESKTOP decides: KDE's
// kioslaverc, or GNOME's settings through gsettings for GNOME and the
// desktops that share its schema. Elsewhere (servers, containers, other
// desktops) there are no OS settings: the environment is the only source.

func init() {
	osLookup = linuxSettings
}

func linuxSettings(ctx context.Context, getenv func(string) string) (*Settings, error) {
	switch desktopKind(getenv("XDG_CURRENT_DESKTOP"), getenv("DESKTOP_SESSION"), getenv("KDE_FULL_SESSION")) {
	case KDE:
		return linuxKDESettings(getenv)
	case GNOME:
		bin, err := exec.LookPath("gsettings")
		if err != nil {
			return nil, nil // no GSettings: nothing to read
		}
		return ReadGNOME(ctx, bin, nil)
	}
	return nil, nil
}
