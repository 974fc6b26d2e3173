package rules

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzAppendJSON checks our encoder against encoding/json (HTML escaping
// off) on values decoded from arbitrary JSON.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatalf("appendJSON(%q): %v", b, err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("appendJSON(%q) = %s, encoding/json = %s", b, got, want.Bytes())
		}
	})
}

func TestAppendJSONTypes(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"ints", []any{1, int64(-2)}, `[1,-2]`},
		{"strings", []string{"a", "<&>", "\u2028"}, `["a","<&>","\u2028"]`},
		{"string map", map[string]string{"b": "1", "a": "2"}, `{"a":"2","b":"1"}`},
		{"time", time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), `"2024-01-02T03:04:05.000000006Z"`},
		{"bytes", []byte("hi"), `"aGk="`},
		{"many keys", map[string]any{"q": 1, "p": 1, "o": 1, "n": 1, "m": 1, "l": 1, "k": 1, "j": 1, "i": 1, "h": 1,
			"g": 1, "f": 1, "e": 1, "d": 1, "c": 1, "b": 1, "a": 1},
			`{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1}`},
		{"other types via encoding/json", struct{ A int }{1}, `{"A":1}`},
		{"floats", []any{1e21, 1e-7, 0.1, math.Copysign(0, -1)}, `[1e+21,1e-7,0.1,-0]`},
		{"any-keyed map (fromPairs)", map[any]any{"b": 1, 2.5: "x", true: nil}, `{"2.5":"x","b":1,"true":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendJSON(nil, tt.v)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	if _, err := appendJSON(nil, map[any]any{[2]int{}: 1}); err == nil {
		t.Error("a map with an array key encoded without error")
	}
	if _, err := appendJSON(nil, math.Inf(1)); err == nil {
		t.Error("Inf encoded without error")
	}
}
