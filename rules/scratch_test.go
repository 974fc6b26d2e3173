package rules

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeJSONScratch decodes each input into a Scratch that has just
// held another payload, then reuses it for a third: a recycled decode
// equals a fresh one, whatever the previous payload left (a failed
// decode included), and leaves nothing behind.
func FuzzDecodeJSONScratch(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	var s Scratch
	bench := []byte(benchStr)
	wantBench, err := DecodeJSON(bench)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := DecodeJSON(b)
		for _, keys := range [][]string{nil, {"a", "temp", "vibration"}} {
			if _, err := s.DecodeJSON(bench); err != nil {
				t.Fatal(err)
			}
			s.reset()
			var got any
			var err error
			if keys == nil {
				got, err = s.DecodeJSON(b)
			} else {
				got, err = s.DecodeJSONKeys(b, keys)
				want, wantErr = DecodeJSONKeys(b, keys)
			}
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("recycled decode of %q: error %v, fresh %v", b, err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("recycled decode of %q = %#v, fresh %#v", b, got, want)
			}
			s.reset()
			again, err := s.DecodeJSON(bench)
			if err != nil || !reflect.DeepEqual(again, wantBench) {
				t.Fatalf("after %q, decoding %s = %#v, %v", b, bench, again, err)
			}
			s.reset()
		}
	})
}

// TestScratchRecycles: once released, a Scratch builds the next payload
// of the same shape in the same maps and slabs, allocating nothing.
func TestScratchRecycles(t *testing.T) {
	var s Scratch
	v, err := s.DecodeJSON([]byte(`{"a":1,"b":{"c":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	first := v.(map[string]any)
	s.reset()
	if len(first) != 0 {
		t.Fatalf("released map = %v, want it cleared", first)
	}
	v, err = s.DecodeJSON([]byte(`{"a":2,"b":{"c":"y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(v).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
		t.Error("the second payload was not built in the first one's map")
	}
	if got, _ := json.Marshal(v); string(got) != `{"a":2,"b":{"c":"y"}}` {
		t.Errorf("second payload = %s", got)
	}
	s.reset()
	payload := []byte(`{"device":"press-07","site":"plant-north","line":"L3","ts":1700000000123,"temp":71.25,"pressure":1013.4,"humidity":41.2,"rpm":1480,"vibration":{"x":0.012,"y":0.009,"z":0.021},"status":"running","alarms":[],"tags":["hydraulic","critical"],"firmware":"4.2.1","seq":982341,"ok":true}`)
	if raceEnabled {
		return // pooled decoders are dropped at random
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.DecodeJSON(payload); err != nil {
			t.Fatal(err)
		}
		s.reset()
	})
	if allocs > 0 {
		t.Errorf("recycled decode allocates %.0f times, want none", allocs)
	}
}

// TestScratchBounds: a map too large to be worth clearing is dropped on
// release, not kept.
func TestScratchBounds(t *testing.T) {
	var s Scratch
	big := []byte(`{`)
	for i := range maxRecycledEntry + 1 {
		if i > 0 {
			big = append(big, ',')
		}
		big = append(big, `"k`...)
		big = append(big, byte('a'+i/26), byte('a'+i%26))
		big = append(big, `":1`...)
	}
	big = append(big, '}')
	v, err := s.DecodeJSON(big)
	if err != nil {
		t.Fatal(err)
	}
	s.reset()
	small, err := s.DecodeJSON([]byte(`{"a":1}`))
	if err != nil || small.(map[string]any)["a"] != 1.0 {
		t.Fatalf("decode after a dropped map = %v, %v", small, err)
	}
	if reflect.ValueOf(small).UnsafePointer() == reflect.ValueOf(v).UnsafePointer() {
		t.Errorf("a map of %d members was kept for reuse", maxRecycledEntry+1)
	}
}

func TestJSONDecoderRecycled(t *testing.T) {
	v, r, err := JSONDecoder{}.DecodeRecycled("t", []byte(`{"a":[1,"x"]}`))
	if err != nil || r == nil {
		t.Fatalf("DecodeRecycled = %v, %v, %v", v, r, err)
	}
	if got, _ := json.Marshal(v); string(got) != `{"a":[1,"x"]}` {
		t.Errorf("decoded %s", got)
	}
	r.Release()
	r.Release() // a second release is harmless
	for _, bad := range []string{`\x00binary`, `{"a":`} {
		if _, r, err := (JSONDecoder{}).DecodeRecycled("t", []byte(bad)); err == nil || r != nil {
			t.Errorf("DecodeRecycled(%q) = releaser %v, error %v; want an error and nothing to release", bad, r, err)
		}
	}
}
