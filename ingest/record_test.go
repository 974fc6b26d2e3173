package ingest

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
)

func sampleRecord() (*broker.Message, []Output) {
	m := &broker.Message{
		Topic: "plant/a/t", Payload: []byte(`{"t":1}`), QoS: 1, Retain: true, ClientID: "c1", Username: "u",
		ContentType: "application/json", ReceivedAt: time.Unix(0, 1700000000123456789),
		UserProperties: []broker.UserProperty{{Name: "k", Value: "v"}},
	}
	outs := []Output{
		{Rule: "r1", Sink: "kafka", Topic: "t.a", Key: []byte("k"), Value: []byte("v"), Mode: ModeSpool},
		{Rule: "r2", Sink: "republish", Topic: "x/y", QoS: 2, Retain: true, Key: []byte{}, Err: ""},
	}
	return m, outs
}

func TestRecordRoundTrip(t *testing.T) {
	m, outs := sampleRecord()
	rec, err := decodeRecord(appendRecord(nil, m, outs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&rec.msg, m) {
		t.Errorf("message = %+v\nwant %+v", rec.msg, *m)
	}
	if !reflect.DeepEqual(rec.outputs, outs) {
		t.Errorf("outputs = %+v\nwant %+v", rec.outputs, outs)
	}
}

func TestOwnedRecordRoundTrip(t *testing.T) {
	m, outs := sampleRecord()
	rec, err := decodeOwnedRecord(appendRecord(nil, m, outs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&rec.msg, m) || !reflect.DeepEqual(rec.outputs, outs) {
		t.Errorf("owned decode differs: %+v %+v", rec.msg, rec.outputs)
	}
}

// TestDecodeIntoReused decodes records into one message and output array
// in turn: each result must equal a fresh decode, whatever the record
// before it carried (user properties, keys, values, more outputs).
func TestDecodeIntoReused(t *testing.T) {
	full, fullOuts := sampleRecord()
	bare := &broker.Message{Topic: "a", ClientID: "c2", ReceivedAt: time.Unix(0, 5)}
	tests := []struct {
		name string
		m    *broker.Message
		outs []Output
	}{
		{name: "full, two outputs", m: full, outs: fullOuts},
		{name: "bare, one output", m: bare, outs: []Output{{Rule: "r", Sink: "s"}}},
		{name: "full, three outputs", m: full, outs: append(fullOuts, Output{Rule: "r3", Sink: "s3", Value: []byte("x")})},
		{name: "bare, no output", m: bare},
		{name: "full, two outputs again", m: full, outs: fullOuts},
		{name: "bare, one output with key and value", m: bare, outs: []Output{{Rule: "r", Sink: "s", Key: []byte("k"), Value: []byte("v")}}},
		{name: "bare, one output again", m: bare, outs: []Output{{Rule: "r", Sink: "s"}}},
	}
	var (
		msg  broker.Message
		outs = make([]Output, 0, 4)
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendRecord(nil, tc.m, tc.outs)
			want, err := decodeOwnedRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeInto(&msg, outs, b, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 && len(got) <= cap(outs) && &got[0] != &outs[:1][0] {
				t.Errorf("%d outputs not decoded into the given array", len(got))
			}
			if !reflect.DeepEqual(msg, want.msg) || !reflect.DeepEqual(got, want.outputs) {
				t.Errorf("reused decode = %+v %+v\nwant %+v %+v", msg, got, want.msg, want.outputs)
			}
		})
	}
}

func TestRecordTruncatedIsError(t *testing.T) {
	m, outs := sampleRecord()
	b := appendRecord(nil, m, outs)
	for i := 0; i < len(b); i++ {
		if _, err := decodeRecord(b[:i]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(b))
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	m, outs := sampleRecord()
	f.Add(appendRecord(nil, m, outs))
	f.Add(appendRecord(nil, &broker.Message{}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(appendRecord(nil, &rec.msg, rec.outputs))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !reflect.DeepEqual(again, rec) {
			t.Fatalf("round trip differs:\n%+v\n%+v", again, rec)
		}
	})
}
