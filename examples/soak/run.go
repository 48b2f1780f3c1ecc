//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// run is one soak: it starts the target and the bridge, opens every
// connection, streams for the duration, checks every stream and the
// bridge's memory and counters, and returns the result. The error is for
// a soak that could not be set up; everything measured goes into the
// result, whose Pass says whether the bridge passed.
func run(ctx context.Context, cfg config, progress io.Writer) (*result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	res := newResult(cfg)
	conns := make([]*soakConn, cfg.conns)
	for i := range conns {
		conns[i] = newSoakConn(i)
	}

	tgt, err := startTarget(conns)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer tgt.close()
	br, err := startBridge(cfg, tgt.addr())
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	bridgeStopped := false
	defer func() {
		if !bridgeStopped {
			_ = br.stop()
		}
	}()
	res.BridgePID = br.pid

	// The baseline, before any connection and before the sampler (with
	// the bridge in process, the sampler's goroutine would count).
	base, err := br.stats(true)
	if err != nil {
		return nil, fmt.Errorf("bridge stats: %w", err)
	}
	res.Goroutines.Baseline = base.Goroutines
	if res.RSS.BaselineKiB, err = rssKiB(br.pid); err != nil {
		return nil, err
	}

	// Streaming starts at t0; the sampler's times are relative to it.
	var t0, t1 time.Time
	var streamStart, lastPrint atomic.Int64 // t0 for the sampler's goroutine; 0 before
	var streaming atomic.Bool
	smp := startSampler(br, cfg.sampleEvery, func(s sample) {
		start := streamStart.Load()
		if start == 0 || s.At.UnixNano() < start || !streaming.Load() {
			return
		}
		sec := (s.At.UnixNano() - start) / int64(time.Second)
		if sec/10 > lastPrint.Load()/10 {
			lastPrint.Store(sec)
			got := receivedBytes(conns)
			fmt.Fprintf(progress, "soak: %3ds  bridge RSS %s  goroutines %d  open %d  received %s up, %s down\n",
				sec, kib(s.RSSKiB), s.Goroutines, s.Open, mb(got[up]), mb(got[down]))
		}
	})
	samplerStopped := false
	stopSampler := func() {
		if samplerStopped {
			return
		}
		samplerStopped = true
		// A bridge too busy to answer /stats within 5 s is a sign of
		// overload, which the rate check judges; the RSS series comes
		// from /proc regardless.
		res.Samples, res.Sampler = smp.stop(t0)
	}
	defer stopSampler()

	// Open every connection; each sends its hello, which the target
	// pairs with it.
	fmt.Fprintf(progress, "soak: opening %d connections through the bridge (pid %d) at %s\n", cfg.conns, br.pid, br.addr)
	dialStart := time.Now()
	if err := dialAll(ctx, cfg, br.addr, conns); err != nil {
		res.problem("%v", err)
		closeAll(conns)
		return res.finish(), nil
	}
	pairCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = tgt.waitPaired(pairCtx, cfg.conns)
	cancel()
	if err != nil {
		res.problem("%v", err)
		closeAll(conns)
		return res.finish(), nil
	}
	res.DialSeconds = time.Since(dialStart).Seconds()
	time.Sleep(500 * time.Millisecond) // let the bridge settle before measuring it idle
	if st, err := br.stats(false); err == nil {
		res.Goroutines.Idle = st.Goroutines
	}
	if res.RSS.IdleKiB, err = rssKiB(br.pid); err != nil {
		return nil, err
	}

	// Stream.
	t0 = time.Now().Add(20 * time.Millisecond)
	t1 = t0.Add(cfg.duration)
	streamStart.Store(t0.UnixNano())
	streaming.Store(true)
	fmt.Fprintf(progress, "soak: %d connections open in %.2fs; streaming %s/s each way per connection for %v\n",
		cfg.conns, res.DialSeconds, byteSize{&cfg.rate}, cfg.duration)
	drain, cancelDrain := context.WithDeadline(ctx, t1.Add(cfg.drain))
	defer cancelDrain()
	var wg sync.WaitGroup
	for _, c := range conns {
		// Each end's sender and receiver; the last to return closes
		// both ends.
		var left atomic.Int32
		left.Store(4)
		half := func(f func()) {
			defer wg.Done()
			f()
			if left.Add(-1) == 0 {
				c.closeEnds()
			}
		}
		wg.Add(4)
		go half(func() { c.clientWrite(cfg, t0, t1, drain) })
		go half(func() { c.clientRead(cfg) })
		go half(func() { c.targetWrite(cfg, t0, t1, drain) })
		go half(func() { c.targetRead(cfg) })
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	cpu0 := cpuNow(br.pid)
	select {
	case <-time.After(time.Until(t1)):
	case <-ctx.Done():
	}
	// What arrived by the end is the rate the machine held: a sender that
	// fell behind sends the rest afterwards, and what it wrote may wait
	// in socket buffers.
	sentOnTime, recvOnTime := sentBytes(conns), receivedBytes(conns)
	cpu1 := cpuNow(br.pid)
	res.CPU = cpuUse(cpu0, cpu1)
	select {
	case <-finished:
	case <-drain.Done():
		if ctx.Err() != nil {
			res.problem("interrupted")
		} else {
			res.problem("streams still unfinished %v after the end: stalled", cfg.drain)
			for _, c := range conns {
				for _, s := range c.streams {
					if s.final.Load() < 0 || s.recv.Load() != s.final.Load() {
						c.fail("stalled: %s sent %d (finished: %t), received %d", dirNames[s.dir], s.sent.Load(), s.final.Load() >= 0, s.recv.Load())
					}
				}
			}
		}
		closeAll(conns)
		<-finished
	}
	streaming.Store(false)
	res.StreamSeconds = time.Since(t0).Seconds()

	// Judge the streams.
	var lags [2][]time.Duration
	for _, c := range conns {
		fails := c.failures()
		for _, s := range c.streams {
			if v := s.verdict(); v != "" {
				fails = append(fails, v)
			}
		}
		if len(fails) > 0 {
			res.ConnsFailed++
			res.failure(fails...)
		}
		for d, s := range c.streams {
			if final := s.final.Load(); final >= 0 {
				res.Sent[d] += final
			}
			if s.verdict() == "" {
				res.Verified[d] += s.recv.Load()
			}
			lags[d] = append(lags[d], s.maxLag)
			if s.maxLag.Seconds() > res.Lag[d].MaxSeconds {
				res.Lag[d].MaxSeconds, res.Lag[d].MaxConn, res.Lag[d].MaxAtSeconds = s.maxLag.Seconds(), c.idx, s.maxLagAt.Seconds()
			}
		}
	}
	for d := range lags {
		slices.Sort(lags[d])
		if n := len(lags[d]); n > 0 {
			res.Lag[d].P50Seconds, res.Lag[d].P99Seconds = lags[d][n/2].Seconds(), lags[d][n*99/100].Seconds()
		}
	}
	for d := range res.Sent {
		res.MBps[d] = float64(res.Verified[d]) / cfg.duration.Seconds() / 1e6
		res.SentOnTime[d], res.ReceivedOnTime[d] = sentOnTime[d], recvOnTime[d]
		// The senders' schedule is fixed by the seed and the rate: the
		// totals are what should have arrived by the end.
		if res.Sent[d] > 0 {
			res.RatePercent[d] = 100 * float64(recvOnTime[d]) / float64(res.Sent[d])
		}
		if cfg.minRate > 0 && res.RatePercent[d] < cfg.minRate {
			res.problem("%s: %.1f%% of the streams had arrived by the end (at least %.0f%% wanted): the machine could not keep up with -rate; lower it or -conns",
				dirNames[d], res.RatePercent[d], cfg.minRate)
		}
	}

	// The bridge must go back to where it started.
	stopSampler()
	after, err := waitSettled(br, base.Goroutines, cfg.settle)
	if err != nil {
		res.problem("bridge stats after the run: %v", err)
	}
	res.Goroutines.After = after.Goroutines
	res.LiveHeap.Baseline, res.LiveHeap.After = base.HeapBytes, after.HeapBytes
	res.BridgeAfter = after.Bridge
	res.Warnings = after.Warnings
	if res.RSS.AfterKiB, err = rssKiB(br.pid); err != nil {
		return nil, err
	}
	res.Memory = judgeMemory(res.Samples, cfg.warmupTime(), cfg.duration, cfg.memTol/100)
	res.Goroutines.Peak = res.Memory.PeakGoroutines
	res.checkBridge(cfg)

	bridgeStopped = true
	if err := br.stop(); err != nil {
		res.problem("bridge stop: %v", err)
	}
	return res.finish(), nil
}

// dialAll opens every connection, cfg.dialers at a time.
func dialAll(ctx context.Context, cfg config, addr string, conns []*soakConn) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	next := make(chan *soakConn)
	var failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(cfg.dialers, len(conns)) {
		wg.Go(func() {
			for c := range next {
				dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
				err := c.dial(dctx, addr, cfg.subprotocol)
				dcancel()
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", c.idx, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range conns {
		next <- c
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d connections could not be opened; first: %v", n, len(conns), firstErr)
	}
	return nil
}

func closeAll(conns []*soakConn) {
	for _, c := range conns {
		c.forceClose()
	}
}

// waitSettled polls the bridge until no connection is open and its
// goroutines are back to the baseline, or until timeout; it returns the
// last stats, taken after a garbage collection.
func waitSettled(br *bridgeRef, baseline int, timeout time.Duration) (bridgeStats, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := br.stats(true)
		if err == nil && st.Bridge.Open == 0 && st.Goroutines <= baseline {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sentBytes(conns []*soakConn) (n [2]int64) {
	for _, c := range conns {
		for d, s := range c.streams {
			n[d] += s.sent.Load()
		}
	}
	return n
}

func receivedBytes(conns []*soakConn) (n [2]int64) {
	for _, c := range conns {
		for d, s := range c.streams {
			n[d] += s.recv.Load()
		}
	}
	return n
}
