//go:build !unix

package peertest

import "os/exec"

func ownProcessGroup(*exec.Cmd) {}

func stopGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }
