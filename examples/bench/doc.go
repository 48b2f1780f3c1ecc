// Command bench measures wsproxy's bridge and Dialer side by side with the
// alternatives on loopback, in one run: websockify (Debian's package) and
// two plain Go TCP relays as references, one splicing (io.Copy between TCP
// connections: the kernel's zero-copy, the limit of any relay) and one
// copying through a 64 KiB user-space buffer (the limit of a relay that
// must frame or unmask bytes), all in front of a splicing TCP echo that is
// also measured alone. It runs on Linux only (it reads /proc). Each
// scenario alternates between the contestants for several rounds and
// reports medians and ratios as Markdown tables, with the load average of
// the machine at the start and the end (figures taken under other load
// are not comparable).
//
//	go run ./examples/bench                 # print the tables
//	go run ./examples/bench -write docs     # also write docs/benchmarks.md and docs/benchmarks.svg
//	go run ./examples/bench -only throughput,small
//
// Scenarios (-only): throughput, small, conns, tunnel (bulk through
// tinyproxy with wsproxy's Dialer and gorilla/websocket's), dial. Peers it
// cannot find (websockify, tinyproxy, squid) are reported and their rows
// left out. With WSPROXY_BENCH_PROFILE=DIR each server it starts writes
// CPU and heap profiles there (see profile.go).
package main
