package pac

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPACConfined checks that a PAC script sees the standard helpers and
// nothing that reaches outside the interpreter: no module loader, no
// network or file API, no timers, no way to compile code from a string
// that escapes the sandbox (eval exists in JavaScript itself but sees the
// same confined global object).
func TestPACConfined(t *testing.T) {
	t.Parallel()
	env := testPACEnv(time.Now())
	for _, name := range []string{
		"require", "module", "exports", "process", "global", "Deno", "Bun",
		"fetch", "XMLHttpRequest", "WebSocket", "importScripts",
		"setTimeout", "setInterval", "setImmediate", "queueMicrotask",
		"readFile", "load", "loadFile", "print", "console", "java", "Packages",
		"__go", "os", "fs",
	} {
		assert.Equal(t, "undefined", evalExpr(t, env, "typeof "+name), name)
	}
	// eval runs in the same confined global object.
	assert.Equal(t, "undefined", evalExpr(t, env, `eval("typeof require")`))
	assert.Equal(t, "function", evalExpr(t, env, "typeof dnsResolve"))
}

// TestPACMemoryLimit: a script that allocates without end is interrupted
// by the heap watchdog long before its time limit, with its own error.
//
// Not parallel: the watchdog measures the whole process's heap, so this
// test's growth would interrupt other tests' slow scripts (TestPACTimeLimit
// saw "memory limit" instead of "time limit" once), and theirs this one.
func TestPACMemoryLimit(t *testing.T) {
	env := testPACEnv(time.Now())
	env.Limit = time.Minute // the memory limit must end it, not the clock
	s, err := Compile("hog", []byte(`function FindProxyForURL(u, h) {
	var keep = [], s = h;
	for (;;) { s = s + s; keep.push(s); }
}`))
	require.NoError(t, err)
	_, err = s.FindProxy(context.Background(), env, &url.URL{Scheme: "ws", Host: "a"})
	require.ErrorIs(t, err, errPACMemory)

	// The script is discarded, and a well-behaved one still works.
	s, err = Compile("ok", []byte(`function FindProxyForURL(u, h) { return "DIRECT"; }`))
	require.NoError(t, err)
	res, err := s.FindProxy(context.Background(), env, &url.URL{Scheme: "ws", Host: "a"})
	require.NoError(t, err)
	assert.Equal(t, "DIRECT", res)
}
