package clickhouse

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fields builds the tree for paths, slot i for paths[i].
func fields(paths ...string) *fieldNode {
	root := &fieldNode{slot: -1}
	for i, p := range paths {
		root.add(strings.Split(p, "."), i)
	}
	return root
}

func TestScan(t *testing.T) {
	paths := []string{"a", "b.c", "b", "e\"q", "u"}
	tests := []struct {
		name, in string
		want     []string // raw text per slot, "" when absent
		wantErr  string
	}{
		{name: "flat", in: `{"a":1,"z":[1,{"a":2}],"u":"x"}`, want: []string{"1", "", "", "", `"x"`}},
		{name: "nested and whole", in: ` { "b" : {"c": "d\"}", "x": null} , "a": -1.5e3 } `, want: []string{"-1.5e3", `"d\"}"`, `{"c": "d\"}", "x": null}`, "", ""}},
		{name: "escaped key", in: `{"e\"q":true,"\u0061":false}`, want: []string{"false", "", "", "true", ""}},
		{name: "b not an object", in: `{"b":[1,2]}`, want: []string{"", "", "[1,2]", "", ""}},
		{name: "empty", in: `{}`, want: []string{"", "", "", "", ""}},
		{name: "last duplicate wins", in: `{"a":1,"a":2}`, want: []string{"2", "", "", "", ""}},
		{name: "backslashes before a quote", in: `{"u":"a\\\\","a":3}`, want: []string{"3", "", "", "", `"a\\\\"`}},
		{name: "not an object", in: `[1]`, wantErr: "not a JSON object"},
		{name: "empty input", in: ``, wantErr: "not a JSON object"},
		{name: "trailing data", in: `{"a":1} x`, wantErr: "trailing data"},
		{name: "unterminated", in: `{"a":"x`, wantErr: "unterminated string"},
		{name: "missing colon", in: `{"a" 1}`, wantErr: "want ':'"},
		{name: "bare word", in: `{"a":NaN}`, wantErr: "invalid character 'N'"},
		{name: "unbalanced", in: `{"a":[1,2}`, wantErr: "unterminated"},
	}
	root := fields(paths...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slots := make([]span, len(paths))
			var s scanner
			in := []byte(tt.in)
			err := s.scan(in, root, slots)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("scan = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				if got := slots[i].text(in); string(got) != w {
					t.Errorf("slot %s = %q, want %q", paths[i], got, w)
				}
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	for _, in := range []string{`plain`, `q\"b\\s\/`, `\b\f\n\r\t`, `\u00e9\u20ac`, `\ud83d\ude00`, `\ud83d`, `\ud83dx`} {
		got, err := unescape(nil, []byte(in))
		if err != nil {
			t.Fatalf("unescape(%s) = %v", in, err)
		}
		var want string
		if err := json.Unmarshal([]byte(`"`+in+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("unescape(%s) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{`\x`, `\u12`, `\`} {
		if _, err := unescape(nil, []byte(in)); err == nil {
			t.Errorf("unescape(%s) succeeded", in)
		}
	}
}

// FuzzScan checks the scanner against encoding/json: on every valid
// object it finds the same top-level and nested values.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":{"c":"x"}}`, `{"a":"\u00e9\\","b":[{"c":1}]}`, `{"b":{"c":{"d":[]}},"a":null}`, `{}`, `{"a":1e5}`} {
		f.Add([]byte(s))
	}
	root := fields("a", "b.c", "b")
	f.Fuzz(func(t *testing.T, data []byte) {
		slots := make([]span, 3)
		var s scanner
		err := s.scan(data, root, slots)
		var obj map[string]any
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			return // invalid JSON may or may not scan; it must not panic
		}
		if err != nil {
			t.Fatalf("scan(%q) = %v for a valid object", data, err)
		}
		check := func(sp span, want any, present bool) {
			slot := sp.text(data)
			if !present {
				if slot != nil {
					t.Fatalf("scan(%q) found %q for an absent field", data, slot)
				}
				return
			}
			var got any
			if err := json.Unmarshal(slot, &got); err != nil {
				t.Fatalf("scan(%q) slot %q is not a JSON value: %v", data, slot, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scan(%q) = %v, want %v", data, got, want)
			}
		}
		a, ok := obj["a"]
		check(slots[0], a, ok)
		b, ok := obj["b"]
		check(slots[2], b, ok)
		bm, isObj := b.(map[string]any)
		c, ok := bm["c"]
		check(slots[1], c, ok && isObj)
	})
}

func TestParseTimeText(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tz database")
	}
	tests := []struct {
		in   string
		loc  *time.Location
		want string // RFC 3339 UTC, "" for not a time
	}{
		{in: "2024-05-01T12:00:00Z", want: "2024-05-01T12:00:00Z"},
		{in: "2024-05-01T12:00:00.123456789Z", want: "2024-05-01T12:00:00.123456789Z"},
		{in: "2024-05-01T12:00:00.1234567891Z", want: "2024-05-01T12:00:00.123456789Z"},
		{in: "2024-05-01T14:00:00+02:00", want: "2024-05-01T12:00:00Z"},
		{in: "2024-05-01T10:30:00-01:30", want: "2024-05-01T12:00:00Z"},
		{in: "2024-05-01 12:00:00", want: "2024-05-01T12:00:00Z"},
		{in: "2024-05-01 14:00:00", loc: berlin, want: "2024-05-01T12:00:00Z"},
		{in: "2024-05-01", want: "2024-05-01T00:00:00Z"},
		{in: "2024-02-30", want: ""},
		{in: "2024-02-30T00:00:00Z", want: ""},
		{in: "2024-13-01T00:00:00Z", want: ""},
		{in: "2024-05-01T24:00:00Z", want: ""},
		{in: "2024-05-01T12:00:00.Z", want: ""},
		{in: "2024-05-01T12:00:00+0200", want: ""},
		{in: "yesterday", want: ""},
		{in: "2024-5-1", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseTimeText([]byte(tt.in), tt.loc)
			if tt.want == "" {
				if ok {
					t.Fatalf("parsed %q as %s", tt.in, got)
				}
				return
			}
			if !ok || got.UTC().Format(time.RFC3339Nano) != tt.want {
				t.Fatalf("parseTimeText(%q) = %s, %v; want %s", tt.in, got.UTC().Format(time.RFC3339Nano), ok, tt.want)
			}
		})
	}
}

// TestParseTimeTextAgainstTime checks the hand-written parser against
// the time package over a wide range of instants and offsets.
func TestParseTimeTextAgainstTime(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600)}
	for i := int64(0); i < 20000; i++ {
		want := time.Unix(-2208988800+i*1234567891%14000000000, i*7919%1e9).In(zones[i%3])
		text := want.Format(time.RFC3339Nano)
		got, ok := parseTimeText([]byte(text), nil)
		if !ok || !got.Equal(want) {
			t.Fatalf("parseTimeText(%s) = %s, %v", text, got, ok)
		}
	}
}

func TestUnixTime(t *testing.T) {
	want := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{"1714564800", "1714564800000", "1714564800000000", "1714564800000000000", "1714564800.0", "1.7145648e9"} {
		got, err := unixTime(&value{kind: valNumber, b: []byte(in)})
		if err != nil || !got.Equal(want) {
			t.Errorf("unixTime(%s) = %s, %v; want %s", in, got.UTC(), err, want)
		}
	}
	if got, _ := unixTime(&value{kind: valNumber, b: []byte("1714564800.25")}); got.Nanosecond() != 250000000 {
		t.Errorf("fractional seconds lost: %s", got)
	}
	if _, err := unixTime(&value{kind: valNumber, b: []byte("1e300")}); err == nil {
		t.Error("unixTime(1e300) succeeded")
	}
}

// TestParseShortFloat checks the fast path against strconv.ParseFloat.
func TestParseShortFloat(t *testing.T) {
	for _, in := range []string{"0", "-0", "21.53", "-21.53", "0.1", "123456789012345", "1.23456789012345", "0.00000000000001", "007.50", "99999999999999.9"} {
		got, ok := parseShortFloat([]byte(in))
		want, err := strconv.ParseFloat(in, 64)
		if !ok || err != nil || got != want || math.Signbit(got) != math.Signbit(want) {
			t.Errorf("parseShortFloat(%s) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", ".", "1.", ".5", "1e3", "1234567890123456", "1.2.3", "--1", "+1", "0x10", "1_0"} {
		if got, ok := parseShortFloat([]byte(in)); ok {
			t.Errorf("parseShortFloat(%q) = %v, want no fast path", in, got)
		}
	}
	for i := 0; i < 100000; i++ {
		in := strconv.FormatFloat(float64(i*7919%1000003)/float64(pow10[i%7]), 'f', -1, 64)
		got, ok := parseShortFloat([]byte(in))
		want, _ := strconv.ParseFloat(in, 64)
		if ok && got != want {
			t.Fatalf("parseShortFloat(%s) = %v, want %v", in, got, want)
		}
	}
}

// TestPredictedKeys scans keys of every length class the predicted-key
// compare handles (one word, two words, longer), in order, out of order,
// near the end of the data and differing in their last byte.
func TestPredictedKeys(t *testing.T) {
	paths := []string{"ab", "quality", "fourteen_bytes", "a_key_longer_than_16"}
	root := fields(paths...)
	tests := []struct{ in, want string }{
		{`{"ab":1,"quality":2,"fourteen_bytes":3,"a_key_longer_than_16":4}`, "1,2,3,4"},
		{`{"a_key_longer_than_16":4,"fourteen_bytes":3,"quality":2,"ab":1}`, "1,2,3,4"},
		{`{"ac":1,"qualitz":2,"fourteen_bytez":3,"a_key_longer_than_17":4}`, ",,,"},
		{`{"ab":1,"quality":2,"fourteen_bytes":3,"a_key_longer_than_16":4,"zz":5}`, "1,2,3,4"},
		{`{"quality":2}`, ",2,,"},
		{`{"ab":1}`, "1,,,"},
		{`{"ab" : 1 , "quality":[2]}`, "1,[2],,"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			slots := make([]span, len(paths))
			var s scanner
			in := []byte(tt.in)
			if err := s.scan(in, root, slots); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sp := range slots {
				got = append(got, string(sp.text(in)))
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("slots %q, want %s", got, tt.want)
			}
		})
	}
}
