package sparkplug

import (
	"fmt"
	"testing"
)

// decodeBoth decodes payload with fresh (Decode) and recycled
// (DecodeScratch) and fails unless both give the same value; the recycled
// one is released.
func decodeBoth(t testing.TB, fresh, recycled *Decoder, topic string, payload []byte) {
	t.Helper()
	want, wantErr := fresh.Decode(topic, payload)
	got, s, err := recycled.DecodeScratch(topic, payload)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%s: recycled error %v, fresh %v", topic, err, wantErr)
	}
	if err != nil && s != nil {
		t.Fatalf("%s: a failed decode returned a Scratch", topic)
	}
	// %v, not reflect.DeepEqual: a NaN value equals itself in print.
	if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
		t.Fatalf("%s: recycled decode\n%s\nfresh\n%s", topic, g, w)
	}
	s.Release()
}

// TestScratchMatchesDecode runs births, aliased data, named and flagged
// metrics, deaths and STATE through a recycling decoder, three times
// over, each value released before the next decode: every value equals
// a fresh decoder's.
func TestScratchMatchesDecode(t *testing.T) {
	fresh, _, _ := newDecoder(t, "")
	recycled, _, _ := newDecoder(t, "")
	for round := range 3 {
		seq := uint64(round * 10)
		steps := []struct {
			topic   string
			payload []byte
		}{
			{"spBv1.0/plant/NBIRTH/edge1", enc(t, seq, OutMetric{Name: "bdSeq", Datatype: TypeInt64, Value: int64(3)},
				OutMetric{Name: "temp", Alias: 1, HasAlias: true, Datatype: TypeFloat, Value: float32(20)},
				OutMetric{Name: "count", Alias: 300, HasAlias: true, Datatype: TypeInt16, Value: int64(-2)})},
			{"spBv1.0/plant/DBIRTH/edge1/dev1", complexPayload()},
			{"spBv1.0/plant/DDATA/edge1/dev1", enc(t, seq+2,
				OutMetric{Alias: 1, HasAlias: true, Value: float32(21)},
				OutMetric{Alias: 300, HasAlias: true, Timestamp: 1700000000500, Value: int64(7)})},
			{"spBv1.0/plant/NDATA/edge1", enc(t, seq+3,
				OutMetric{Name: "s", Datatype: TypeString, Value: "text"},
				OutMetric{Alias: 1, HasAlias: true, Value: float32(22)},
				OutMetric{Alias: 99, HasAlias: true, Value: float32(1)})}, // unknown alias
			{"spBv1.0/plant/DDATA/edge1/dev1", enc(t, seq+4, OutMetric{Alias: 1, HasAlias: true, Value: float32(23)})},
			{"spBv1.0/STATE/host1", []byte(`{"online":true,"timestamp":1700000000000}`)},
			{"spBv1.0/plant/NDEATH/edge1", enc(t, 0, OutMetric{Name: "bdSeq", Datatype: TypeInt64, Value: int64(3)})},
			{"spBv1.0/plant/DDATA/edge1/dev1", []byte{0x12, 0x02, 0x82}}, // truncated
		}
		for _, st := range steps {
			decodeBoth(t, fresh, recycled, st.topic, st.payload)
		}
	}
}

// TestScratchRecycles: data of a known shape decodes without allocating
// its metric maps, list or boxes once a Scratch was released.
func TestScratchRecycles(t *testing.T) {
	d, _, _ := newDecoder(t, "")
	birth, data := []OutMetric{}, []OutMetric{}
	for i := range 20 {
		birth = append(birth, OutMetric{Name: fmt.Sprintf("m%d", i), Alias: uint64(i), HasAlias: true, Datatype: TypeDouble, Value: float64(i)})
		data = append(data, OutMetric{Alias: uint64(i), HasAlias: true, Timestamp: 1700000000000 + uint64(i), Datatype: TypeDouble, Value: float64(i) + 0.5})
	}
	if _, err := d.Decode("spBv1.0/g/NBIRTH/e", enc(t, 0, birth...)); err != nil {
		t.Fatal(err)
	}
	payload := enc(t, 1, data...)
	decode := func() {
		payload[len(payload)-1] = 1 // the same seq every time: a gap, counted
		v, s, err := d.DecodeScratch("spBv1.0/g/NDATA/e", payload)
		if err != nil || s == nil {
			t.Fatalf("DecodeScratch = %v, %v, %v", v, s, err)
		}
		if n := len(v.(map[string]any)["metrics"].([]any)); n != 20 {
			t.Fatalf("%d metrics, want 20", n)
		}
		s.Release()
	}
	decode()
	if raceEnabled {
		return // pooled scratches are dropped at random
	}
	if allocs := testing.AllocsPerRun(100, decode); allocs > 1 {
		t.Errorf("recycled decode allocates %.0f times, want at most 1", allocs)
	}
}
