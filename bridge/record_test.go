package bridge_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsproxy/wsproxy/bridge"
	"github.com/wsproxy/wsproxy/internal/peertest"
)

// recordedFrame is one entry of a recording as noVNC's player sees it.
type recordedFrame struct {
	FromClient bool   `json:"fromClient"`
	Timestamp  int64  `json:"timestamp"`
	Hex        string `json:"hex"`
}

func (f recordedFrame) String() string {
	dir := "to client"
	if f.FromClient {
		dir = "from client"
	}
	return fmt.Sprintf("%s @%dms %s", dir, f.Timestamp, f.Hex)
}

// readRecording parses a recording strictly, in Go, by noVNC's rules: the
// exact first and last lines, one single-quoted JavaScript string per line
// with JavaScript's escapes, data after the second marker character.
func readRecording(t *testing.T, path string) []recordedFrame {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("%s does not end with a newline: %q", path, text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[0] != "var VNC_frame_data = [" || lines[len(lines)-1] != "'EOF'];" {
		t.Fatalf("%s: bad first or last line:\n%s", path, text)
	}
	var frames []recordedFrame
	for _, line := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(line, "'") || !strings.HasSuffix(line, "',") {
			t.Fatalf("%s: line is not a quoted string and a comma: %q", path, line)
		}
		s, err := unquoteJS(line[1 : len(line)-2])
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		marker := s[0]
		if marker != '{' && marker != '}' {
			t.Fatalf("%s: bad marker in %q", path, line)
		}
		end := strings.IndexByte(s[1:], marker) + 1
		if end == 0 {
			t.Fatalf("%s: no timestamp end in %q", path, line)
		}
		ms, err := strconv.ParseInt(s[1:end], 10, 64)
		if err != nil {
			t.Fatalf("%s: timestamp in %q: %v", path, line, err)
		}
		frames = append(frames, recordedFrame{FromClient: marker == '}', Timestamp: ms, Hex: hex.EncodeToString([]byte(s[end+1:]))})
	}
	return frames
}

// unquoteJS decodes the inside of a single-quoted JavaScript string whose
// character codes are all below 256, refusing raw quotes, backslashes and
// line breaks as a JavaScript parser would.
func unquoteJS(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'', '\n', '\r':
			return "", fmt.Errorf("raw %q at %d", c, i)
		case '\\':
		default:
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		switch e := s[i]; e {
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '0':
			b.WriteByte(0)
		case 'x':
			if i+3 > len(s) {
				return "", fmt.Errorf("short \\x escape at %d", i)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad \\x escape at %d", i)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("unexpected escape \\%c", e)
		}
	}
	return b.String(), nil
}

// readRecordingNode parses the file with Node running it as a script, as
// noVNC's playback page does.
func readRecordingNode(t *testing.T, path string) []recordedFrame {
	t.Helper()
	node := peertest.Require(t, "node", "apt-get install nodejs")
	out, err := exec.Command(node, filepath.Join("testdata", "record_reader.js"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("node reader: %v\n%s", err, out)
	}
	var frames []recordedFrame
	if err := json.Unmarshal(out, &frames); err != nil {
		t.Fatalf("node reader output: %v\n%s", err, out)
	}
	return frames
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

type sent struct {
	fromClient bool
	data       []byte
}

func checkFrames(t *testing.T, who string, got []recordedFrame, want []sent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s read %d frames, want %d: %v", who, len(got), len(want), got)
	}
	var last int64
	for i, f := range got {
		if f.FromClient != want[i].fromClient || f.Hex != hex.EncodeToString(want[i].data) {
			t.Errorf("%s: frame %d = %v, want fromClient=%v %x", who, i, f, want[i].fromClient, want[i].data)
		}
		if f.Timestamp < last || f.Timestamp < 0 {
			t.Errorf("%s: frame %d timestamp %d after %d", who, i, f.Timestamp, last)
		}
		last = f.Timestamp
	}
}

func TestRecordingRoundTrip(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "session")
	r := bridge.NewRecorder(base, 0)
	rec, err := r.Open()
	if err != nil {
		t.Fatal(err)
	}
	want := []sent{
		{false, []byte("RFB 003.008\n")},
		{true, []byte("RFB 003.008\n")},
		{false, allBytes()},
		{true, []byte(`it's a \ back'slash, a "quote", tab	cr` + "\r lf\n and }{ markers")},
		{false, []byte{}},
		{true, bytes.Repeat([]byte{0, 0xff, '\'', '\\'}, 5000)},
		{false, []byte("</script><!--")},
	}
	for _, s := range want {
		if s.fromClient {
			rec.FromClient(s.data)
		} else {
			rec.ToClient(s.data)
		}
		// Valid after every frame, before Close: a killed bridge leaves
		// a playable file.
		readRecording(t, rec.Path())
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	rec.ToClient([]byte("after close")) // ignored
	if rec.Path() != base+".1" {
		t.Errorf("path %s, want %s.1", rec.Path(), base)
	}
	checkFrames(t, "go reader", readRecording(t, rec.Path()), want)
	checkFrames(t, "node reader", readRecordingNode(t, rec.Path()), want)

	st, err := os.Stat(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if st.Size() != rec.Size() {
		t.Errorf("Size() %d, file %d", rec.Size(), st.Size())
	}
}

func TestRecordingExactLines(t *testing.T) {
	t.Parallel()
	rec, err := bridge.NewRecorder(filepath.Join(t.TempDir(), "r"), 0).Open()
	if err != nil {
		t.Fatal(err)
	}
	rec.ToClient([]byte("a\\b'c\td\ne\rf\x00g\x7fh\x80i\xffj~ "))
	rec.FromClient([]byte("ok"))
	rec.Close()
	got, _ := os.ReadFile(rec.Path())
	want := "var VNC_frame_data = [\n" +
		`'{0{a\\b\'c\td\ne\rf\x00g\x7fh\x80i\xffj~ ',` + "\n" +
		`'}0}ok',` + "\n" +
		"'EOF'];\n"
	if string(got) != want {
		t.Errorf("file\n%s\nwant\n%s", got, want)
	}
}

func TestRecorderNumbersConnections(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "rec")
	r := bridge.NewRecorder(base, 0)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := r.Open()
			if err != nil {
				t.Error(err)
				return
			}
			defer rec.Close()
			// Both directions at once, as a relay calls them.
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); rec.ToClient([]byte("down")) }()
			go func() { defer inner.Done(); rec.FromClient([]byte("up")) }()
			inner.Wait()
		}()
	}
	wg.Wait()
	for i := 1; i <= 5; i++ {
		if frames := readRecording(t, fmt.Sprintf("%s.%d", base, i)); len(frames) != 2 {
			t.Errorf("%s.%d: %d frames", base, i, len(frames))
		}
	}
}

func TestRecordingSizeCap(t *testing.T) {
	t.Parallel()
	rec, err := bridge.NewRecorder(filepath.Join(t.TempDir(), "cap"), 200).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	var want []sent
	for i := 0; i < 20; i++ {
		p := []byte(fmt.Sprintf("frame %02d", i))
		rec.ToClient(p)
		if !rec.Truncated() {
			want = append(want, sent{false, p})
		}
	}
	if !rec.Truncated() {
		t.Fatal("never truncated")
	}
	if rec.Size() > 200 {
		t.Errorf("size %d over the cap", rec.Size())
	}
	rec.ToClient([]byte("x")) // even a small frame stays out once full
	checkFrames(t, "go reader", readRecording(t, rec.Path()), want)
}

func TestRecorderOpenError(t *testing.T) {
	t.Parallel()
	if _, err := bridge.NewRecorder(filepath.Join(t.TempDir(), "no", "such", "dir"), 0).Open(); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func FuzzRecording(f *testing.F) {
	f.Add([]byte("RFB 003.008\n"), []byte("\x00\xff'\\\t\r\n"))
	f.Add([]byte{}, []byte("}{"))
	f.Fuzz(func(t *testing.T, down, up []byte) {
		rec, err := bridge.NewRecorder(filepath.Join(t.TempDir(), "f"), -1).Open()
		if err != nil {
			t.Fatal(err)
		}
		rec.ToClient(down)
		rec.FromClient(up)
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		checkFrames(t, "go reader", readRecording(t, rec.Path()), []sent{{false, down}, {true, up}})
	})
}

// TestRecordingClockStartsAtHandshake: the recording opens when the
// WebSocket opens, before the target is dialled (as websockify's does), so
// a slow dial shows in the first frame's time, and a dial that fails still
// leaves a valid, empty recording.
func TestRecordingClockStartsAtHandshake(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "rec")
	rec := bridge.NewRecorder(base, 0)
	const dialDelay = 300 * time.Millisecond
	echo := peertest.EchoServer(t)
	h := &bridge.Handler{
		OpenTap: rec.OpenTap,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(dialDelay)
			if addr == "127.0.0.1:1" {
				return nil, errors.New("refused for the test")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, echo)
		},
	}
	h.Resolver = bridge.FixedTarget{Address: "127.0.0.1:2"}
	url, _ := serve(t, h)
	c := dial(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("hi")))
	readN(t, c, 2, false)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	require.True(t, waitFor(func() bool { return len(readRecording(t, base+".1")) >= 2 }))
	first := readRecording(t, base+".1")[0]
	assert.GreaterOrEqual(t, first.Timestamp, dialDelay.Milliseconds(), "the clock started after the dial: %v", first)

	h2 := &bridge.Handler{OpenTap: rec.OpenTap, Dial: h.Dial, Resolver: bridge.FixedTarget{Address: "127.0.0.1:1"}}
	url2, logs := serve(t, h2)
	c2 := dial(t, url2, nil)
	_, _, err := c2.Read(ctx)
	assert.Equal(t, websocket.StatusInternalError, websocket.CloseStatus(err))
	logs.waitLog(t, "bridge: target dial failed")
	require.True(t, waitFor(func() bool { _, err := os.Stat(base + ".2"); return err == nil }))
	assert.Empty(t, readRecording(t, base+".2"), "a valid recording without frames")
}
