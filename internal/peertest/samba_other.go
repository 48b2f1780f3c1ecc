//go:build !unix

package peertest

import "errors"

// lockMachineWide is unavailable here: Samba's winbindd is a Unix peer.
func lockMachineWide(string) (func(), error) {
	return nil, errors.New("winbindd peers need a Unix system")
}

func stopProcessesMentioning(string) {}
