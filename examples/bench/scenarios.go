//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// throughput streams size-byte writes through f to addr for d while reading
// the echo, then waits for the last byte back. It returns MB/s of payload
// (each byte crosses the relay twice).
func throughput(f flavor, addr string, size int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	s, err := f.dial(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	var got atomic.Int64
	rerr := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := s.Read(buf)
			got.Add(int64(n))
			if err != nil {
				rerr <- err
				return
			}
		}
	}()
	var sent int64
	start := time.Now()
	for time.Since(start) < d {
		if _, err := s.Write(msg); err != nil {
			return 0, err
		}
		sent += int64(size)
	}
	// Wait for the last byte of the echo.
	for got.Load() < sent {
		select {
		case err := <-rerr:
			return 0, fmt.Errorf("read after %d of %d bytes: %w", got.Load(), sent, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("echo incomplete: %d of %d bytes", got.Load(), sent)
		case <-time.After(time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	s.Close()
	<-rerr
	return float64(sent) / elapsed.Seconds() / 1e6, nil
}

// latencyResult summarises small-message round trips.
type latencyResult struct {
	perSec   float64
	p50, p99 time.Duration
}

// roundTrips runs conns connections, each sending 64-byte messages and
// waiting for the echo, for d.
func roundTrips(f flavor, addr string, conns int, d time.Duration) (latencyResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	streams := make([]io.ReadWriteCloser, conns)
	for i := range streams {
		s, err := f.dial(ctx, addr)
		if err != nil {
			for _, s := range streams[:i] {
				s.Close()
			}
			return latencyResult{}, err
		}
		streams[i] = s
	}
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	start := time.Now()
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 64)
			back := make([]byte, 64)
			lat := make([]time.Duration, 0, 1<<16)
			for time.Since(start) < d {
				t0 := time.Now()
				if _, err := s.Write(msg); err != nil {
					errc <- err
					return
				}
				if _, err := io.ReadFull(s, back); err != nil {
					errc <- err
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return latencyResult{}, err
	default:
	}
	if len(all) == 0 {
		return latencyResult{}, errors.New("no round trip completed")
	}
	slices.Sort(all)
	return latencyResult{
		perSec: float64(len(all)) / elapsed.Seconds(),
		p50:    all[len(all)/2],
		p99:    all[len(all)*99/100],
	}, nil
}

// connsResult is what the many-connections scenario measured.
type connsResult struct {
	opened      int
	openTime    time.Duration
	rssPerConn  float64 // KiB of bridge RSS per idle connection
	rssAfterMsg float64 // the same once every connection has echoed one 64-byte message
	streamMBps  float64
	streamConns int
	verified    int64 // bytes verified by hash in the streaming part
}

// manyConnections opens n idle connections through f (measuring the RSS of
// pid), closes them, then streams perConn bytes on each of streamN
// connections at once, checking every byte by hash.
func manyConnections(f flavor, addr string, pid, n, streamN, perConn int) (connsResult, error) {
	var res connsResult
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before, err := rssKiB(pid)
	if err != nil {
		return res, err
	}
	streams := make([]io.ReadWriteCloser, 0, n)
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr error
	start := time.Now()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := f.dial(ctx, addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			streams = append(streams, s)
		}()
	}
	wg.Wait()
	res.openTime = time.Since(start)
	res.opened = len(streams)
	if firstErr != nil {
		return res, fmt.Errorf("opened %d of %d: %w", res.opened, n, firstErr)
	}
	time.Sleep(time.Second) // let the bridge settle
	after, err := rssKiB(pid)
	if err != nil {
		return res, err
	}
	res.rssPerConn = float64(after-before) / float64(res.opened)
	snapshotMemory(pid)

	// One 64-byte message echoed on every connection, then idle again:
	// what a connection that has carried traffic keeps.
	var touchErr error
	for _, s := range streams {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			msg := make([]byte, 64)
			_, err := s.Write(msg)
			if err == nil {
				_, err = io.ReadFull(s, msg)
			}
			if err != nil {
				mu.Lock()
				touchErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if touchErr != nil {
		return res, fmt.Errorf("one message on each idle connection: %w", touchErr)
	}
	time.Sleep(time.Second)
	if after, err = rssKiB(pid); err != nil {
		return res, err
	}
	res.rssAfterMsg = float64(after-before) / float64(res.opened)
	for _, s := range streams {
		s.Close()
	}
	streams = streams[:0]

	// Streaming with integrity: each connection sends random bytes and
	// compares the hash of what comes back.
	res.streamConns = streamN
	var verified atomic.Int64
	errc := make(chan error, streamN)
	start = time.Now()
	for i := 0; i < streamN; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			s, err := f.dial(ctx, addr)
			<-sem
			if err != nil {
				errc <- err
				return
			}
			defer s.Close()
			data := make([]byte, perConn)
			_, _ = rand.Read(data)
			want := sha256.Sum256(data)
			go func() {
				for off := 0; off < len(data); off += 32 << 10 {
					if _, err := s.Write(data[off:min(off+32<<10, len(data))]); err != nil {
						return
					}
				}
			}()
			h := sha256.New()
			if _, err := io.CopyN(h, s, int64(perConn)); err != nil {
				errc <- err
				return
			}
			if [32]byte(h.Sum(nil)) != want {
				errc <- errors.New("echoed bytes differ")
				return
			}
			verified.Add(int64(perConn))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	for err := range errc {
		return res, err
	}
	res.verified = verified.Load()
	res.streamMBps = float64(res.verified) / elapsed.Seconds() / 1e6
	return res, nil
}
