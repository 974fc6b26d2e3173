package sparkplug

import (
	"fmt"
	"testing"
)

// BenchmarkDecodeDDATA decodes a DDATA of 20 aliased metrics, the issue's
// target case (≤ 10 µs).
func BenchmarkDecodeDDATA(b *testing.B) {
	d, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	var birth, data []OutMetric
	for i := range 20 {
		dt, v := uint32(TypeDouble), any(float64(i)+0.5)
		if i%2 == 1 {
			dt, v = TypeInt32, int64(-i)
		}
		birth = append(birth, OutMetric{Name: fmt.Sprintf("line1/cell%d/value", i), Alias: uint64(i), HasAlias: true, Datatype: dt, Value: v})
		data = append(data, OutMetric{Alias: uint64(i), HasAlias: true, Timestamp: 1700000000000, Datatype: dt, Value: v})
	}
	if _, err := d.Decode("spBv1.0/g/NBIRTH/e", enc(b, 0)); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Decode("spBv1.0/g/DBIRTH/e/d", enc(b, 1, birth...)); err != nil {
		b.Fatal(err)
	}
	payload := enc(b, 2, data...)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		payload[len(payload)-1] = byte((2 + i) % 128) // one-byte varint seq: a gap once per 128
		if _, err := d.Decode("spBv1.0/g/DDATA/e/d", payload); err != nil {
			b.Fatal(err)
		}
	}
}
