package peertest

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// Xtigervnc starts TigerVNC's X server with no authentication (security
// type None) on 127.0.0.1 and returns its RFB address. The desktop is
// named desktopName (what noVNC reports in its desktopname event). The X
// display is the first free one from :40 up (no lock file, no socket).
func Xtigervnc(t testing.TB, desktopName string) string {
	t.Helper()
	bin := Require(t, "Xtigervnc", "apt-get install -y tigervnc-standalone-server")
	port := FreePort(t)
	display := -1
	for d := 40; d < 200; d++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", d)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", d)); err == nil {
			continue
		}
		// Reserve the display against parallel tests of this process.
		if f, err := os.OpenFile(fmt.Sprintf("/tmp/.X%d-wsproxy", d), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			f.Close()
			name := f.Name()
			t.Cleanup(func() { os.Remove(name) })
			display = d
			break
		}
	}
	if display < 0 {
		t.Fatalf("peertest: no free X display")
	}
	p := Start(t, "Xtigervnc", []string{bin, ":" + strconv.Itoa(display),
		"-geometry", "320x200", "-depth", "24", "-rfbport", strconv.Itoa(port),
		"-interface", "127.0.0.1", "-localhost", "-SecurityTypes", "None",
		"-nolisten", "tcp", "-AlwaysShared", "-desktop", desktopName})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitTCP(t, addr, 20*time.Second)
	return addr
}

// Chromium returns the path of the Chromium browser that Playwright
// (playwright-core in testdata/node) drives headless, or ends the test
// when it is missing.
func Chromium(t testing.TB) string {
	t.Helper()
	return Require(t, "chromium", "apt-get install -y chromium")
}
