package sysproxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSysCacheBackoff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	calls := 0
	var answer *Settings
	var fail error
	c := NewCache(func(ctx context.Context) (*Settings, error) {
		calls++
		return answer, fail
	}, func() time.Time { return now })
	ctx := context.Background()
	answer = &Settings{Source: GNOME}
	s, err := c.Get(ctx)
	require.NoError(t, err)
	require.Same(t, answer, s)
	_, _ = c.Get(ctx)
	require.Equal(t, 1, calls, "cached")

	now = now.Add(CacheTTL)
	fail = errors.New("gsettings hung")
	s, err = c.Get(ctx)
	require.NoError(t, err)
	require.Same(t, answer, s, "last good answer")
	require.Equal(t, 2, calls)
	_, _ = c.Get(ctx)
	require.Equal(t, 2, calls, "backing off")
	now = now.Add(time.Second)
	_, _ = c.Get(ctx)
	require.Equal(t, 3, calls, "retried after 1 s")
	now = now.Add(time.Second)
	_, _ = c.Get(ctx)
	require.Equal(t, 3, calls, "then after 2 s")

	c.Invalidate()
	_, err = c.Get(ctx)
	require.ErrorContains(t, err, "gsettings hung", "no good answer left to fall back on")
	require.Equal(t, 4, calls)
	fail = nil
	c.Invalidate()
	s, err = c.Get(ctx)
	require.NoError(t, err)
	require.Same(t, answer, s)
}

func TestResolvConfDomains(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"search.example", "corp.example", "other.example"},
		resolvConfDomains(strings.NewReader("# comment\nnameserver 10.0.0.1\ndomain search.example\nsearch corp.example other.example\noptions ndots:2\n")))
}
