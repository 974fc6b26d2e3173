package sparkplug

import (
	"bytes"
	"testing"
)

func seeds(f *testing.F) {
	f.Add(nbirth(f))
	f.Add(enc(f, 7, OutMetric{Alias: 1, HasAlias: true, Value: float32(1)}, OutMetric{Name: "s", Datatype: TypeString, Value: "x"}))
	f.Add(complexPayload())
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x02, 0x82, 0x01})
}

// FuzzDecodePayload checks that no input makes the wire decoder panic and
// that a decoded payload's metrics all convert.
func FuzzDecodePayload(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePayload(b)
		if err != nil {
			return
		}
		for i := range p.Metrics {
			for dt := uint32(0); dt <= TypeDateTimeArray+1; dt++ {
				_, _ = p.Metrics[i].metricMap(nil, "x", dt, nil, nil)
			}
		}
	})
}

// FuzzDecoder feeds the stateful decoder a birth, then the input as data
// on node and device topics; a second decoder fed the same, recycling its
// values, gives the same ones.
func FuzzDecoder(f *testing.F) {
	seeds(f)
	d, err := New(Options{Rebirth: true})
	if err != nil {
		f.Fatal(err)
	}
	recycled, err := New(Options{Rebirth: true})
	if err != nil {
		f.Fatal(err)
	}
	birth := nbirth(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, topic := range []string{"spBv1.0/g/NDATA/e", "spBv1.0/g/DBIRTH/e/d", "spBv1.0/g/DDATA/e/d", "spBv1.0/g/NDEATH/e", "spBv1.0/g/NBIRTH/e"} {
			decodeBoth(t, d, recycled, topic, b)
		}
		decodeBoth(t, d, recycled, "spBv1.0/g/NBIRTH/e", birth)
	})
}

// FuzzField checks field's fast path against protowire's reading.
func FuzzField(f *testing.F) {
	for _, b := range [][]byte{{0x08, 0x01}, {0x12, 0x02, 'a', 'b'}, {0x12, 0x05, 'a'}, {0x00, 0x01}, {0x0b, 0x01}, {0x08, 0x81, 0x01}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n1, t1, u1, v1, l1, e1 := field(b)
		n2, t2, u2, v2, l2, e2 := fieldSlow(b)
		if n1 != n2 || t1 != t2 || u1 != u2 || !bytes.Equal(v1, v2) || l1 != l2 || (e1 == nil) != (e2 == nil) {
			t.Fatalf("field(%x) = %v %v %v %x %v %v, protowire reads %v %v %v %x %v %v", b, n1, t1, u1, v1, l1, e1, n2, t2, u2, v2, l2, e2)
		}
	})
}
