package webhook

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/sinks"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "abc", want: `"abc"`},
		{name: "quotes and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "control characters", in: "a\nb\tc\rd\x00\x1f", want: `"a\nb\tc\rd\u0000\u001f"`},
		{name: "unicode kept", in: "température ✓", want: `"température ✓"`},
		{name: "invalid utf-8", in: "a\xffb", want: `"a\ufffdb"`},
		{name: "line separators", in: "a\u2028b\u2029", want: `"a\u2028b\u2029"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendString(nil, tt.in)); got != tt.want {
				t.Fatalf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\"\\\n\x00", "\xff\xfe", "\u2028", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, b, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // invalid bytes become U+FFFD, as encoding/json does
		}
		if got != want {
			t.Fatalf("appendString(%q) decodes to %q", s, got)
		}
	})
}

func FuzzAppendRecord(f *testing.F) {
	f.Add("t/1", "c", []byte("k"), []byte(`{"a":1}`))
	f.Add("t", "", []byte{0xff}, []byte("\x00binary"))
	f.Add("", "c", []byte(nil), []byte("[1,\n2]"))
	f.Fuzz(func(t *testing.T, topic, client string, key, value []byte) {
		r := sinks.Record{Rule: "r", Key: key, Value: value, Source: sinks.Source{Topic: topic, ClientID: client, QoS: 1, ReceivedAt: time.Unix(1, 5)}}
		b := appendRecord(nil, &r)
		var o object
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("appendRecord = %s: not JSON: %v", b, err)
		}
		v, err := o.value()
		if err != nil {
			t.Fatal(err)
		}
		k, err := o.key()
		if err != nil {
			t.Fatal(err)
		}
		if o.Encoding == "base64" && string(v) != string(value) {
			t.Fatalf("base64 value %q, want %q", v, value)
		}
		if o.Encoding == "" && !json.Valid(value) {
			t.Fatalf("value %q embedded as JSON", value)
		}
		if string(k) != string(key) {
			t.Fatalf("key %q, want %q", k, key)
		}
	})
}
