package sparkplug

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func enc(t testing.TB, seq uint64, ms ...OutMetric) []byte {
	t.Helper()
	b, err := (&Message{Timestamp: 1700000000000, Seq: seq, HasSeq: true, Metrics: ms}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nbirth(t testing.TB) []byte {
	return enc(t, 0,
		OutMetric{Name: "bdSeq", Datatype: TypeInt64, Value: int64(3)},
		OutMetric{Name: "Node Control/Rebirth", Datatype: TypeBoolean, Value: false},
		OutMetric{Name: "temp", Alias: 1, HasAlias: true, Datatype: TypeFloat, Value: float32(20)},
		OutMetric{Name: "count", Alias: 2, HasAlias: true, Datatype: TypeInt16, Value: int64(-2)})
}

type recorder struct {
	mu   sync.Mutex
	reqs []RebirthRequest
}

func (r *recorder) rebirth(q RebirthRequest) { r.mu.Lock(); r.reqs = append(r.reqs, q); r.mu.Unlock() }

func (r *recorder) reasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		out = append(out, q.Reason)
	}
	return out
}

func newDecoder(t *testing.T, dir string) (*Decoder, *recorder, *prometheus.Registry) {
	t.Helper()
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	d, err := New(Options{StateDir: dir, Rebirth: true, OnRebirth: rec.rebirth, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return d, rec, reg
}

func metricsOf(t *testing.T, v any) []any {
	t.Helper()
	return v.(map[string]any)["metrics"].([]any)
}

func TestBirthDataAliases(t *testing.T) {
	d, rec, _ := newDecoder(t, "")
	if _, err := d.Decode("spBv1.0/plant/NBIRTH/edge1", nbirth(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode("spBv1.0/plant/DBIRTH/edge1/pump", enc(t, 1,
		OutMetric{Name: "rpm", Alias: 10, HasAlias: true, Datatype: TypeUInt32, Value: int64(1500)})); err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode("spBv1.0/plant/DDATA/edge1/pump", enc(t, 2,
		OutMetric{Alias: 10, HasAlias: true, Value: int64(1600)},
		OutMetric{Alias: 2, HasAlias: true, Value: int64(-7)},
		OutMetric{Alias: 1, HasAlias: true, Timestamp: 5, Value: float32(21.5)}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"group_id": "plant", "message_type": "DDATA", "edge_node_id": "edge1", "device_id": "pump",
		"timestamp": int64(1700000000000), "seq": int64(2),
		"metrics": []any{
			map[string]any{"name": "rpm", "alias": int64(10), "datatype": "UInt32", "value": int64(1600)},
			map[string]any{"name": "count", "alias": int64(2), "datatype": "Int16", "value": int64(-7)},
			map[string]any{"name": "temp", "alias": int64(1), "datatype": "Float", "value": 21.5, "timestamp": int64(5)},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DDATA = %#v\nwant %#v", got, want)
	}
	if len(rec.reasons()) != 0 {
		t.Fatalf("rebirths = %v, want none", rec.reasons())
	}
	if !d.Online("plant", "edge1", "") || !d.Online("plant", "edge1", "pump") {
		t.Fatal("node and device should be online")
	}
	if _, err := d.Decode("spBv1.0/plant/DDEATH/edge1/pump", enc(t, 3)); err != nil {
		t.Fatal(err)
	}
	if d.Online("plant", "edge1", "pump") || !d.Online("plant", "edge1", "") {
		t.Fatal("DDEATH should take only the device offline")
	}
	stale := enc(t, 0, OutMetric{Name: "bdSeq", Datatype: TypeInt64, Value: int64(2)})
	if _, err := d.Decode("spBv1.0/plant/NDEATH/edge1", stale); err != nil || !d.Online("plant", "edge1", "") {
		t.Fatalf("stale NDEATH (err %v) should be ignored", err)
	}
	death := enc(t, 0, OutMetric{Name: "bdSeq", Datatype: TypeInt64, Value: int64(3)})
	if _, err := d.Decode("spBv1.0/plant/NDEATH/edge1", death); err != nil || d.Online("plant", "edge1", "") {
		t.Fatalf("NDEATH (err %v) should take the node offline", err)
	}
}

func TestSequenceAndRebirth(t *testing.T) {
	tests := []struct {
		name    string
		seqs    []uint64 // NDATA seqs after an NBIRTH with seq 0
		alias   uint64
		reasons []string
		gaps    float64
	}{
		{name: "in order", seqs: []uint64{1, 2, 3}, alias: 1},
		{name: "gap", seqs: []uint64{1, 3}, alias: 1, reasons: []string{"sequence gap"}, gaps: 1},
		{name: "unknown alias", seqs: []uint64{1}, alias: 99, reasons: []string{"unknown alias"}},
		{name: "rate limited", seqs: []uint64{5, 9}, alias: 1, reasons: []string{"sequence gap"}, gaps: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, rec, reg := newDecoder(t, "")
			if _, err := d.Decode("spBv1.0/g/NBIRTH/e", nbirth(t)); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.seqs {
				v, err := d.Decode("spBv1.0/g/NDATA/e", enc(t, s, OutMetric{Alias: tt.alias, HasAlias: true, Value: float32(1)}))
				if err != nil {
					t.Fatal(err)
				}
				if name := metricsOf(t, v)[0].(map[string]any)["name"]; tt.alias == 99 && name != "" {
					t.Fatalf("unknown alias resolved to %q, want no guess", name)
				}
			}
			if got := rec.reasons(); !reflect.DeepEqual(got, tt.reasons) {
				t.Fatalf("rebirth reasons = %v, want %v", got, tt.reasons)
			}
			if g := testutil.ToFloat64(d.m.seqGaps); g != tt.gaps {
				t.Fatalf("gaps = %v, want %v", g, tt.gaps)
			}
			_ = reg
			for _, q := range rec.reqs {
				if q.Topic != "spBv1.0/g/NCMD/e" {
					t.Fatalf("rebirth topic = %q", q.Topic)
				}
				p, err := DecodePayload(q.Payload)
				if err != nil || p.Metrics[0].Name != "Node Control/Rebirth" || p.Metrics[0].num != 1 {
					t.Fatalf("rebirth payload = %+v, %v", p, err)
				}
			}
		})
	}
}

func TestSeqWrap(t *testing.T) {
	d, rec, _ := newDecoder(t, "")
	if _, err := d.Decode("spBv1.0/g/NBIRTH/e", nbirth(t)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 300; i++ {
		if _, err := d.Decode("spBv1.0/g/NDATA/e", enc(t, uint64(i%256), OutMetric{Alias: 1, HasAlias: true, Value: float32(1)})); err != nil {
			t.Fatal(err)
		}
	}
	if g := testutil.ToFloat64(d.m.seqGaps); g != 0 || len(rec.reasons()) != 0 {
		t.Fatalf("wrap at 255 counted %v gaps, rebirths %v", g, rec.reasons())
	}
}

func TestRestartKeepsAliases(t *testing.T) {
	dir := t.TempDir()
	d1, _, _ := newDecoder(t, dir)
	if _, err := d1.Decode("spBv1.0/g/NBIRTH/e", nbirth(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Decode("spBv1.0/g/DBIRTH/e/dev", enc(t, 1, OutMetric{Name: "rpm", Alias: 10, HasAlias: true, Datatype: TypeUInt32, Value: int64(1)})); err != nil {
		t.Fatal(err)
	}
	d2, rec, _ := newDecoder(t, dir) // a restarted Sluice
	v, err := d2.Decode("spBv1.0/g/DDATA/e/dev", enc(t, 42, OutMetric{Alias: 10, HasAlias: true, Value: int64(7)}, OutMetric{Alias: 1, HasAlias: true, Value: float32(2)}))
	if err != nil {
		t.Fatal(err)
	}
	ms := metricsOf(t, v)
	if ms[0].(map[string]any)["name"] != "rpm" || ms[1].(map[string]any)["name"] != "temp" {
		t.Fatalf("metrics after restart = %v", ms)
	}
	if r := rec.reasons(); len(r) != 0 {
		t.Fatalf("rebirths after restart = %v, want none (first seq is not a gap)", r)
	}
	d3, rec3, _ := newDecoder(t, t.TempDir()) // no state: unknown node
	if _, err := d3.Decode("spBv1.0/g/NDATA/e", enc(t, 1, OutMetric{Alias: 1, HasAlias: true, Value: float32(2)})); err != nil {
		t.Fatal(err)
	}
	if r := rec3.reasons(); !reflect.DeepEqual(r, []string{"unknown node"}) {
		t.Fatalf("rebirths without state = %v", r)
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		in   string
		want Topic
		ok   bool
	}{
		{"spBv1.0/g/NBIRTH/e", Topic{Group: "g", Type: NBIRTH, EdgeNode: "e"}, true},
		{"spBv1.0/g/DDATA/e/d", Topic{Group: "g", Type: DDATA, EdgeNode: "e", Device: "d"}, true},
		{"spBv1.0/STATE/host1", Topic{Type: STATE, HostID: "host1"}, true},
		{"spBv1.0/g/DDATA/e", Topic{}, false},
		{"spBv1.0/g/NDATA/e/d", Topic{}, false},
		{"spBv1.0/g/XDATA/e", Topic{}, false},
		{"spAv1.0/g/NDATA/e", Topic{}, false},
		{"spBv1.0//NDATA/e", Topic{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTopic(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseTopic = %+v, %v; want %+v ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestStateMessage(t *testing.T) {
	d, _, _ := newDecoder(t, "")
	v, err := d.Decode("spBv1.0/STATE/scada", []byte(`{"online":true,"timestamp":1}`))
	want := map[string]any{"online": true, "timestamp": 1.0, "message_type": "STATE", "host_id": "scada"}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("STATE = %v, %v", v, err)
	}
}

func TestRebirthInterval(t *testing.T) {
	now := time.Unix(0, 0)
	rec := &recorder{}
	d, _ := New(Options{Rebirth: true, RebirthInterval: time.Second, OnRebirth: rec.rebirth, Now: func() time.Time { return now }})
	for i := 0; i < 3; i++ {
		if _, err := d.Decode("spBv1.0/g/NDATA/e", enc(t, 1)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(600 * time.Millisecond)
	}
	if n := len(rec.reasons()); n != 2 {
		t.Fatalf("rebirth requests = %d, want 2 (at 0s and 1.2s)", n)
	}
}

func TestConcurrentDecode(t *testing.T) {
	d, rec, _ := newDecoder(t, t.TempDir())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				topic, payload := "spBv1.0/g/NDATA/e", enc(t, uint64(i%256), OutMetric{Alias: 1, HasAlias: true, Value: float32(1)})
				switch {
				case i%50 == 0:
					topic, payload = "spBv1.0/g/NBIRTH/e", nbirth(t)
				case g == 1 && i%20 == 0:
					topic, payload = "spBv1.0/g/DBIRTH/e/d", enc(t, 1, OutMetric{Name: "x", Alias: 9, HasAlias: true, Datatype: TypeInt8, Value: int64(-1)})
				}
				if _, err := d.Decode(topic, payload); err != nil {
					t.Error(err)
					return
				}
				_ = d.Online("g", "e", "d")
			}
		})
	}
	wg.Wait()
	if len(rec.reasons()) == 0 {
		t.Fatal("interleaved sequences should have requested a rebirth")
	}
}
