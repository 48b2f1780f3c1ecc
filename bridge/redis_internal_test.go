package bridge

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNegativeCache: entries expire after the TTL, the oldest go first
// when the cache is full, and a token added again keeps its later time.
func TestNegativeCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	c := newNegativeCache(time.Second, 3)
	for i := range 5 {
		c.add("t"+strconv.Itoa(i), now)
	}
	if c.size() != 3 {
		t.Fatalf("size %d after 5 adds to a cache of 3", c.size())
	}
	for i, want := range []bool{false, false, true, true, true} {
		if got := c.has("t"+strconv.Itoa(i), now); got != want {
			t.Errorf("has(t%d) = %v, want %v", i, got, want)
		}
	}
	if c.has("t4", now.Add(time.Second)) {
		t.Error("an entry is still there at its TTL")
	}
	c.add("t2", now.Add(500*time.Millisecond)) // t2 again, later; evicts t2's first entry
	c.add("x", now.Add(600*time.Millisecond))
	if !c.has("t2", now.Add(1200*time.Millisecond)) {
		t.Error("t2 added again lost its later time when its first entry went")
	}
	c.add("y", now.Add(5*time.Second)) // everything else has expired
	if c.size() != 1 || !c.has("y", now.Add(5*time.Second)) {
		t.Errorf("expired entries kept: size %d", c.size())
	}
}

// FuzzRedisSource: any --token-source parses to usable addresses or to an
// error that does not repeat the password.
func FuzzRedisSource(f *testing.F) {
	for _, s := range []string{"h:1:2:pw:ns", `h::::"a:b"`, "[::1]:6379", "redis://u:p@h:1/2?namespace=x",
		"redis+sentinel://s1,s2:2/m/1", "redis+cluster://a,b", "rediss://h?timeout=1s"} {
		f.Add(s, "hunter22", uint8(0))
	}
	f.Fuzz(func(t *testing.T, src, password string, form uint8) {
		check := func(src, password string) {
			r, err := ParseRedisSource(src)
			if err != nil {
				// Whether the error shows the password: put a marker in the
				// password's place and look for the marker, since the
				// password's text can also arise from other parts of the
				// source as the error quotes them (found by the fuzzer:
				// the escaped host "\x00000000" holds "0000000").
				if password != "" && len(password) >= 6 && strings.Count(src, password) == 1 {
					const marker = "Zq7-password-marker"
					if _, err := ParseRedisSource(strings.Replace(src, password, marker, 1)); err != nil && strings.Contains(err.Error(), marker) {
						t.Fatalf("ParseRedisSource(%q): error %q repeats the password", src, err)
					}
				}
				return
			}
			for _, a := range append([]string{r.Addr}, r.Addrs...) {
				host, port, err := net.SplitHostPort(a)
				if err != nil || host == "" {
					t.Fatalf("ParseRedisSource(%q): address %q", src, a)
				}
				if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
					t.Fatalf("ParseRedisSource(%q): port of %q", src, a)
				}
			}
			if r.DB < 0 {
				t.Fatalf("ParseRedisSource(%q): database %d", src, r.DB)
			}
		}
		check(src, "")
		switch form % 3 {
		case 0:
			check("h:"+src+":0:"+password, password)
		case 1:
			check("redis://:"+password+"@"+src, password)
		case 2:
			check("redis+sentinel://u:"+password+"@"+src, password)
		}
	})
}
