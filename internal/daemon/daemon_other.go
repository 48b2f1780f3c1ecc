//go:build !unix

package daemon

import "errors"

func startChild(exe string, args []string, logFile string) error {
	return errors.New("daemon: detaching is not supported on this OS; run the program under a service manager")
}
