package pac

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The process-wide caches were filled by whichever Dialer asked first:
// its User-Agent and dial function then served every other Dialer, and a
// failure through one Dialer's network was handed to the next. Entries are
// now kept apart by everything that can change a fetch's result.
func TestCacheKeyedByFetcherSettings(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		fmt.Fprintf(w, "function FindProxyForURL(u, h) { return %q; }", "PROXY "+r.UserAgent()+":1")
	}))
	t.Cleanup(srv.Close)
	raw := srv.URL + "/keyed.pac"
	find := func(f Fetcher) string {
		t.Helper()
		s, err := f.Script(context.Background(), raw)
		require.NoError(t, err)
		res, err := s.FindProxy(context.Background(), DefaultEnv(), mustURL(t, "http://a.example/"))
		require.NoError(t, err)
		return res
	}
	require.Equal(t, "PROXY ua-one:1", find(Fetcher{UserAgent: "ua-one"}))
	require.Equal(t, "PROXY ua-one:1", find(Fetcher{UserAgent: "ua-one"}), "cached")
	require.EqualValues(t, 1, fetches.Load())
	require.Equal(t, "PROXY ua-two:1", find(Fetcher{UserAgent: "ua-two"}), "another User-Agent fetches its own")
	type owner struct{ int }
	a, b := &owner{1}, &owner{2}
	find(Fetcher{UserAgent: "ua-one", Scope: a})
	find(Fetcher{UserAgent: "ua-one", Scope: a})
	find(Fetcher{UserAgent: "ua-one", Scope: b})
	require.EqualValues(t, 4, fetches.Load(), "one fetch per scope")
}

// InvalidateCache during a fetch was undone when the fetch completed: the
// fill wrote its answer and time over the reset. An invalidation now wins:
// the fetch answers its own caller, and the next look-up fetches again.
func TestInvalidateDuringFetchWins(t *testing.T) {
	t.Parallel()
	c := newOnceCache[string, int](time.Hour, time.Hour)
	started, release := make(chan struct{}), make(chan struct{})
	fills := 0
	done := make(chan int)
	go func() {
		v, _ := c.get(context.Background(), "k", func(context.Context) (int, error) {
			fills++
			close(started)
			<-release
			return 1, nil
		})
		done <- v
	}()
	<-started
	c.invalidate()
	close(release)
	require.Equal(t, 1, <-done, "the fill in flight answers its caller")
	v, err := c.get(context.Background(), "k", func(context.Context) (int, error) {
		fills++
		return 2, nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, v, "filled again after the invalidation")
	require.Equal(t, 2, fills)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}
