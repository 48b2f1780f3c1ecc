package hixie_test

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/wsproxy/wsproxy/internal/hixie"
)

// FuzzSeqNum cuts data into payloads (each byte of lens is the length of
// the next one, the rest of data the last) and checks that AppendPayload
// with a Seq appends exactly "<n>:" and the base64 of each, n counting
// from 0, which decodes back to the payloads; that without a Seq it
// appends the base64 alone; and that an Encoder with a Seq numbers its
// frames the same way, one number per frame. It also checks
// SeqNumRequested on the query parsed by url.ParseQuery against its
// documented rule, read off the raw query string: some "seq_num" parameter
// that is a bare flag or has the value 1 or true.
func FuzzSeqNum(f *testing.F) {
	f.Add([]byte("hihi"), []byte{2}, "seq_num")
	f.Add([]byte("abc"), []byte{1, 1, 0}, "token=a&seq_num=1")
	f.Add([]byte{0, 0xff, 0xfe}, []byte{}, "seq_num=0&seq_num=true")
	f.Add([]byte{}, []byte{0, 0, 0}, "seq_num=no")
	f.Add([]byte("x"), []byte{}, "seq%5Fnum=%31;x")
	f.Add([]byte("0123456789"), []byte{3, 3, 3, 3}, "seqnum=1&seq_num=")
	f.Fuzz(func(t *testing.T, data, lens []byte, query string) {
		if len(data) > 1<<12 || len(lens) > 1<<10 || len(query) > 1<<12 {
			// Nothing new past that (TestEncoderSplitsLargeWrites has the
			// writes over MaxWritePayload), and ParseQuery stays under its
			// limit on the number of parameters.
			return
		}
		var payloads [][]byte
		rest := data
		for _, n := range lens {
			k := min(int(n), len(rest))
			payloads, rest = append(payloads, rest[:k]), rest[k:]
		}
		payloads = append(payloads, rest)

		var seq hixie.Seq
		for i, p := range payloads {
			dst := []byte("kept")
			out := hixie.AppendPayload(dst, p, &seq)
			if !bytes.HasPrefix(out, []byte("kept")) {
				t.Fatalf("payload %d: dst not kept: %q", i, out)
			}
			text := string(out[len("kept"):])
			if want := strconv.Itoa(i) + ":" + base64.StdEncoding.EncodeToString(p); text != want {
				t.Fatalf("payload %d %q: %q, want %q", i, p, text, want)
			}
			num, b64, _ := strings.Cut(text, ":")
			n, err := strconv.ParseUint(num, 10, 64)
			if err != nil || n != uint64(i) {
				t.Fatalf("payload %d: number %q", i, num)
			}
			if back, err := base64.StdEncoding.DecodeString(b64); err != nil || !bytes.Equal(back, p) {
				t.Fatalf("payload %d %q: decodes to %q, %v", i, p, back, err)
			}
			if plain := hixie.AppendPayload(nil, p, nil); string(plain) != b64 {
				t.Fatalf("payload %d without Seq: %q, want %q", i, plain, b64)
			}
		}

		// An Encoder with a Seq: frames 0x00 "<n>:" base64 0xFF, one per
		// write here, numbered on across writes.
		var out bytes.Buffer
		e := hixie.NewEncoder(&out)
		e.Seq = new(hixie.Seq)
		var want []byte
		frames := 0
		for _, p := range payloads {
			if n, err := e.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
			}
			want = append(want, p...)
			frames += max(1, (len(p)+hixie.MaxWritePayload-1)/hixie.MaxWritePayload)
		}
		var got []byte
		wire := out.Bytes()
		for i := 0; i < frames; i++ {
			end := bytes.IndexByte(wire, 0xFF)
			if len(wire) == 0 || wire[0] != 0x00 || end < 0 {
				t.Fatalf("frame %d: %q", i, wire)
			}
			num, b64, ok := strings.Cut(string(wire[1:end]), ":")
			if !ok || num != strconv.Itoa(i) {
				t.Fatalf("frame %d numbered %q", i, wire[1:end])
			}
			p, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(p) > hixie.MaxWritePayload {
				t.Fatalf("frame %d: %d bytes, %v", i, len(p), err)
			}
			got, wire = append(got, p...), wire[end+1:]
		}
		if len(wire) != 0 || !bytes.Equal(got, want) {
			t.Fatalf("%d frames carried %d bytes, want %d; %d bytes left over", frames, len(got), len(want), len(wire))
		}

		// SeqNumRequested.
		requested := func(query string) bool {
			q, _ := url.ParseQuery(query)
			return hixie.SeqNumRequested(q)
		}
		wantSeq := false
		for _, kv := range strings.Split(query, "&") {
			if strings.Contains(kv, ";") {
				continue // not a separator: ParseQuery drops the pair
			}
			k, v, _ := strings.Cut(kv, "=")
			k, err1 := url.QueryUnescape(k)
			v, err2 := url.QueryUnescape(v)
			if err1 == nil && err2 == nil && k == "seq_num" && (v == "" || v == "1" || v == "true") {
				wantSeq = true
			}
		}
		if got := requested(query); got != wantSeq {
			t.Fatalf("SeqNumRequested(%q) = %v, want %v", query, got, wantSeq)
		}
		if !requested(query+"&seq_num") || !requested("seq_num=1&"+query) || requested(query+"&seq_num=0") != wantSeq {
			t.Fatalf("SeqNumRequested(%q) changed wrongly with one more seq_num", query)
		}
	})
}
