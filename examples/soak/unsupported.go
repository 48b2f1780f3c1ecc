//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "soak: Linux only (it reads the bridge's memory from /proc)")
	os.Exit(2)
}
