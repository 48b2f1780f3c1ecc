// Command bench measures wsproxy's bridge and Dialer side by side with the
// alternatives on loopback, in one run: websockify (Debian's package) and
// a plain Go TCP relay written with io.Copy, the practical upper bound for
// a WebSocket-to-TCP relay on the machine. It runs on Linux only (it reads
// /proc). Each scenario alternates between
// the contestants for several rounds and reports medians and ratios as a
// Markdown table.
//
//	go run ./examples/bench                 # print the table
//	go run ./examples/bench -write docs     # also write docs/benchmarks.md and docs/benchmarks.svg
//
// Peers it cannot find (websockify, tinyproxy, squid) are reported and
// their rows left out. With WSPROXY_BENCH_PROFILE=DIR each server it
// starts writes CPU and heap profiles there (see profile.go).
package main
