// Command wsdial is a proxy-aware WebSocket client in the spirit of
// websocat and wscat: it copies standard input to a WebSocket and the
// messages it receives to standard output, through whatever HTTP proxy the
// settings in force choose.
//
//	wsdial [flags] ws[s]://host[:port]/path
//
// By default each line of input is sent as a text message and each message
// received is written as a line. With -binary, input bytes are sent as
// binary messages and message payloads are written unframed, so wsdial is a
// byte pipe. At the end of input wsdial waits until the peer has been quiet
// for -linger, so the answer to the last message is not lost, then closes
// normally. It exits 0 after a normal close and 1, with one line on
// standard error, otherwise.
//
// Run "wsdial -demo" for a self-contained demonstration on loopback.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintf(stderr, "wsdial: %v\n", err)
		return 2
	}
	switch {
	case opts.demo:
		err = runDemo(ctx, stdout)
	case opts.showProxy:
		err = showProxy(ctx, opts, stdout, stderr)
	default:
		err = dialAndCopy(ctx, opts, stdin, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsdial: %v\n", err)
		return 1
	}
	return 0
}
