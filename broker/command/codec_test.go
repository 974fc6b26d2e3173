package command

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
)

func codecRecords() map[string]record {
	at := time.Date(2026, 11, 26, 15, 4, 5, 123456789, time.UTC)
	full := record{
		Cmd: Command{ID: "c-1", Device: "press-7", Topic: "devices/press-7/commands", Payload: []byte{0, 1, 2, 255},
			QoS: 2, TTL: 90 * time.Second, CorrelationID: "mes-42", ContentType: "application/json",
			UserProperties: []broker.UserProperty{{Name: "a", Value: "b"}, {Name: "", Value: "é"}},
			Source:         "kafka", Principal: "kafka:commands", Deadline: at.Add(time.Minute)},
		Status: Status{ID: "c-1", State: Responded, Device: "press-7", Topic: "devices/press-7/commands", Source: "kafka",
			CorrelationID: "mes-42", Reason: "", Response: []byte(`{"ok":true}`),
			History:   []Transition{{State: Accepted, At: at}, {State: Queued, At: at.Add(time.Millisecond), Reason: "x"}},
			CreatedAt: at, UpdatedAt: at.Add(time.Second)},
		Expires: at.Add(90 * time.Second),
	}
	odd := record{
		Cmd:    Command{ID: "odd", Topic: "t/\"q\"/\\/\n\t\x01\x7f", Payload: []byte{}, Source: "bad \xff utf8 \u2028 <&>"},
		Status: Status{ID: "odd", State: Rejected, Reason: "line\r\nbreak", History: []Transition{}},
	}
	return map[string]record{"full": full, "odd": odd, "zero": {}, "local time": {Expires: at.In(time.FixedZone("x", 3600))}}
}

// TestAppendRecord: the hand-written encoder reads back (encoding/json)
// to what encoding/json's own encoding reads back to.
func TestAppendRecord(t *testing.T) {
	for name, r := range codecRecords() {
		t.Run(name, func(t *testing.T) {
			b := appendRecord(nil, &r)
			var got, want record
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("decoding %s: %v", b, err)
			}
			ref, err := json.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back\n%+v\nwant\n%+v\nfrom %s", got, want, b)
			}
		})
	}
}

func BenchmarkRecordEncode(b *testing.B) {
	r := codecRecords()["full"]
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendRecord(buf[:0], &r)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
