package sysproxy

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// On macOS the system proxy settings come from "scutil --proxy", which
// prints the SystemConfiguration proxy dictionary without cgo.

func init() {
	osLookup = darwinSettings
}

func darwinSettings(ctx context.Context, _ func(string) string) (*Settings, error) {
	cmd := exec.CommandContext(ctx, "/usr/sbin/scutil", "--proxy")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("scutil --proxy: %w", ctx.Err())
		}
		return nil, fmt.Errorf("scutil --proxy: %w", err)
	}
	return parseScutil(bytes.NewReader(out))
}
