package rules

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
)

var jsonSeeds = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, `[]`, `{}`, `""`, `"a\"b\\c\/d\b\f\n\r\t"`,
	`"\u00e9\u4e2d\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, "\"\xff\xfe\"", "\"é中\"",
	`0`, `-0`, `1.5e3`, `-12.25E-2`, `123456789012345`, `1234567890123456789`, `1e400`, `01`, `1.`, `.5`,
	`-`, `1e`, `1e+`, `tru`, `nul`, `nulll`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `[1 2]`, ` [ 1 , 2 ] `,
	`{"a":1}x`, "\"a\x01\"", `"\x"`, `"\u12"`, `"\u12g4"`, `{"a":1,"a":2}`, `[[[[[]]]]]`, `{1:2}`, ``, ` `,
	benchStr,
}

const benchStr = `{"device":"press-07","site":"berlin","line":3,"temp":85.25,"vibration":{"x":0.012},"alarms":[]}`

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeJSON(b)
		var want any
		wantErr := json.Unmarshal(b, &want)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("DecodeJSON(%q) error %v, encoding/json error %v", b, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeJSON(%q) = %#v, encoding/json = %#v", b, got, want)
		}
	})
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "unexpected end of JSON input"},
		{`{"a":1}x`, `invalid character 'x' after top-level value at offset 7`},
		{`[1,]`, `invalid character ']' looking for beginning of value at offset 3`},
		{`1e400`, `number 1e400 out of range at offset 0`},
		{`{"a" 1}`, `invalid character '1' after object key at offset 5`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := DecodeJSON([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
		})
	}
}

// TestDecodeJSONNumbers compares number conversion with strconv.ParseFloat
// on many decimals around the fast path's limits (15 digits, 10^±22).
func TestDecodeJSONNumbers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		mant := r.Int64N(1 << 54)
		prec := 1 + r.IntN(17)
		s := strconv.FormatFloat(float64(mant)*math.Pow10(r.IntN(60)-30), 'g', prec, 64)
		if r.IntN(2) == 0 {
			s = strconv.FormatFloat(float64(mant)/math.Pow10(r.IntN(20)), 'f', r.IntN(20), 64)
		}
		if r.IntN(4) == 0 {
			s = "-" + s
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		got, err := DecodeJSON([]byte(s))
		if err != nil || got.(float64) != want || math.Signbit(got.(float64)) != math.Signbit(want) {
			t.Fatalf("DecodeJSON(%s) = %v, %v; ParseFloat = %v", s, got, err, want)
		}
	}
}

func TestJSONDecoderNotJSON(t *testing.T) {
	for _, in := range []string{"", "   ", "\x00\x01binary", "hello", "<xml/>"} {
		if _, err := (JSONDecoder{}).Decode("t", []byte(in)); err != ErrNotJSON {
			t.Errorf("Decode(%q) err = %v, want ErrNotJSON", in, err)
		}
	}
	for _, in := range []string{` {"a":1}`, "[1]", `"s"`, "-1", "true", "null", "7"} {
		if _, err := (JSONDecoder{}).Decode("t", []byte(in)); err != nil {
			t.Errorf("Decode(%q) = %v", in, err)
		}
	}
}

// FuzzDecodeJSONKeys checks the projection against the full decode: the
// same errors, and the wanted members only, decoded the same.
func FuzzDecodeJSONKeys(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	keys := []string{"a", "temp", "vibration"}
	f.Fuzz(func(t *testing.T, b []byte) {
		full, fullErr := DecodeJSON(b)
		got, err := DecodeJSONKeys(b, keys)
		if (err == nil) != (fullErr == nil) || err != nil && err.Error() != fullErr.Error() {
			t.Fatalf("DecodeJSONKeys(%q) error %v, DecodeJSON error %v", b, err, fullErr)
		}
		if err != nil {
			return
		}
		want := full
		if m, ok := full.(map[string]any); ok {
			proj := map[string]any{}
			for _, k := range keys {
				if v, ok := m[k]; ok {
					proj[k] = v
				}
			}
			want = proj
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeJSONKeys(%q) = %#v, want %#v", b, got, want)
		}
	})
}
