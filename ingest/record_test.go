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
