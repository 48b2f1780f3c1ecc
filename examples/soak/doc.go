// Command soak is the bridge's load test with integrity checks: 2,000
// concurrent WebSocket connections (by default) stream random data both
// ways through bridge.Handler to a TCP target for a set time, and every
// byte is checked at the other end, byte for byte against the sender's
// generator and by SHA-256 of the whole stream. Meanwhile the bridge's
// resident memory and goroutines are sampled every second; memory must
// stay flat once the first seconds are past. The exit status is 0 only
// when nothing was lost or corrupted, every connection ended cleanly, the
// bridge's counters agree with what was sent, its goroutines went back to
// where they started and its memory stayed flat.
//
//	go run ./examples/soak                          # 2,000 connections, 60 s
//	go run ./examples/soak -conns 200 -duration 10s # a quick one
//	make soak SOAKFLAGS='-subprotocol base64 -json'
//
// Everything runs on loopback: the target and the WebSocket clients in
// this process, the bridge in a child process (this same binary, started
// again with an environment variable naming its role) so that its memory
// is measured alone; -bridge-proc=false keeps it in process. Each
// direction of each connection is a keystream seeded from -seed, the
// connection and the direction, sent in messages of random size at -rate;
// half the connections end with the client's WebSocket close, half with
// the target's TCP half-close, so both of the bridge's closing paths are
// soaked.
//
// The default rate, 16 KiB/s per connection and direction (32 MB/s each
// way over 2,000 connections), leaves room on a 2-core machine running
// the clients, the checks, the target and the bridge together: 32 KiB/s
// holds only when nothing else runs, 64 KiB/s would need more than two
// cores. -on-time fails a run whose streams fell behind.
//
// The program runs on Linux only: it reads memory and CPU time from /proc.
package main
