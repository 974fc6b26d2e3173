package jsonstr

import (
	"encoding/json"
	"testing"
)

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\n\r\t\b\f\x00\x1f", "\u2028\u2029", "\xff\xfe", "héllo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(Append(nil, s), &back); err != nil {
			t.Fatalf("Append(%q) is not valid JSON: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("Append(%q) decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	})
}
