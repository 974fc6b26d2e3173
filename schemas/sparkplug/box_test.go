package sparkplug

import (
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestSlabBoxesAsGo checks that values boxed into a slab have the type and
// value Go's own boxing gives, also once the slab is full, and that later
// boxing leaves earlier values alone.
func TestSlabBoxesAsGo(t *testing.T) {
	tests := []struct {
		name string
		box  func(*slab) any
	}{
		{"small int", func(s *slab) any { return s.int64(7) }},
		{"negative int", func(s *slab) any { return s.int64(-7) }},
		{"large int", func(s *slab) any { return s.int(1700000000000) }},
		{"max int64", func(s *slab) any { return s.int(math.MaxInt64) }},
		{"uint64 beyond int64", func(s *slab) any { return s.int(math.MaxUint64) }},
		{"float", func(s *slab) any { return s.float64(-1.25) }},
		{"NaN bits", func(s *slab) any { return s.float64(math.Inf(-1)) }},
		{"string", func(s *slab) any { return s.string("line1/cell3/value") }},
		{"empty string", func(s *slab) any { return s.string("") }},
	}
	for _, size := range []int{0, 1, 64} {
		s := newSlab(size, size)
		var got []any
		for range 3 { // past a small slab's room
			for _, tt := range tests {
				got = append(got, tt.box(s))
			}
		}
		for i, v := range got {
			tt := tests[i%len(tests)]
			t.Run(tt.name, func(t *testing.T) {
				if want := tt.box(nil); !reflect.DeepEqual(v, want) {
					t.Fatalf("slab of %d: boxed %#v (%T), Go boxes %#v (%T)", size, v, v, want, want)
				}
			})
		}
	}
}

// TestSlabScalars checks every scalar kind and signed datatype decoded
// into a slab against the same decoded without one.
func TestSlabScalars(t *testing.T) {
	kinds := []struct {
		kind protowire.Number
		u    uint64
		raw  []byte
	}{
		{10, 0xfffffff9, nil}, {10, 300, nil}, {11, math.MaxUint64, nil}, {11, 1 << 40, nil},
		{12, uint64(math.Float32bits(21.5)), nil}, {13, math.Float64bits(-1e300), nil},
		{14, 1, nil}, {15, 0, []byte("degC")},
	}
	for dt := uint32(TypeUnknown); dt <= TypeString; dt++ {
		t.Run(TypeName(dt), func(t *testing.T) {
			s := newSlab(1, 1)
			for _, k := range kinds {
				got, err1 := scalar(s, dt, k.kind, k.u, k.raw)
				want, err2 := scalar(nil, dt, k.kind, k.u, k.raw)
				if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("kind %d: slab gives %#v (%T, %v), plain %#v (%T, %v)", k.kind, got, got, err1, want, want, err2)
				}
			}
		})
	}
}

// TestBoxesOfCountsEnough checks that a decoded message of every value
// kind boxes into the room boxesOf counts, with no second slab.
func TestBoxesOfCountsEnough(t *testing.T) {
	d, _, _ := newDecoder(t, "")
	if _, err := d.Decode("spBv1.0/g/NBIRTH/e", nbirth(t)); err != nil {
		t.Fatal(err)
	}
	payload := enc(t, 1,
		OutMetric{Name: "big", Alias: 1000, HasAlias: true, Timestamp: 5, Datatype: TypeInt64, Value: int64(-1 << 40)},
		OutMetric{Name: "f", Timestamp: 5, Datatype: TypeDouble, Value: 2.5},
		OutMetric{Name: "s", Timestamp: 6, Datatype: TypeString, Value: "x"},
		OutMetric{Name: "u", Datatype: TypeUInt64, Value: uint64(math.MaxUint64)},
		OutMetric{Name: "n", Datatype: TypeInt32, Value: nil},
	)
	p, err := DecodePayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	words, strs := boxesOf(p)
	s := newSlab(words, strs)
	w0, s0 := &s.words[:1][0], &s.strs[:1][0]
	n := d.node("g", "e")
	n.mu.Lock()
	_, _, err = d.apply(n, Topic{Group: "g", Type: NDATA, EdgeNode: "e"}, p, s)
	n.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if &s.words[:1][0] != w0 || &s.strs[:1][0] != s0 {
		t.Fatalf("boxesOf counted %d words and %d strings: too few", words, strs)
	}
}
