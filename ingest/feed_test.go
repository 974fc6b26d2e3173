package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sinks"
)

// TestFeedRecordsIntact drives the spool feed's pooled records through
// every shape: records with two outputs for one sink (rules "raw" and
// "tagged", the second with its own value and key), records with none for
// a sink (odd messages skip sink "even") and a sink that fails now and
// then (retries hold records while later ones recycle pooled structs).
// Every record must reach its sink with the value and source it was
// published with, once per rule, and the accounting must balance.
func TestFeedRecordsIntact(t *testing.T) {
	cfg := testConfig(t)
	router := RouterFunc(func(in *Input, dst []Output) []Output {
		seq := strings.TrimSuffix(strings.TrimPrefix(string(in.Msg.Payload), `{"seq":`), "}")
		dst = append(dst,
			Output{Rule: "raw", Sink: "all"},
			Output{Rule: "tagged", Sink: "all", Value: []byte("tag-" + in.Msg.ClientID + "-" + seq), Key: []byte("k" + seq)})
		if n, _ := strconv.Atoi(seq); n%2 == 0 {
			dst = append(dst, Output{Rule: "raw", Sink: "even", Topic: "even/" + seq})
		}
		return dst
	})
	calls := 0
	all := &memSink{fail: func(sinks.Record) error {
		calls++
		if calls%97 == 0 {
			return fmt.Errorf("flaky")
		}
		return nil
	}}
	even := &memSink{}
	h := start(t, cfg, router, map[string]sinks.Sink{"all": all, "even": even})
	const clients, per = 4, 500
	var acks []chan error
	for i := range per {
		for c := range clients {
			acks = append(acks, h.publish("c"+strconv.Itoa(c), i, 1))
		}
	}
	for _, a := range acks {
		if err := waitAck(t, a); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every output delivered", func() bool {
		s := h.p.Accounting().Snapshot()
		return flowOf(s, "raw", "all").Delivered == clients*per &&
			flowOf(s, "tagged", "all").Delivered == clients*per &&
			flowOf(s, "raw", "even").Delivered == clients*per/2
	})
	tests := []struct {
		name  string
		sink  *memSink
		rule  string
		count int
		check func(r sinks.Record, client, seq string) error
	}{
		{name: "raw payload", sink: all, rule: "raw", count: clients * per, check: func(r sinks.Record, client, seq string) error {
			if string(r.Value) != `{"seq":`+seq+`}` || string(r.Key) != client {
				return fmt.Errorf("value %q key %q", r.Value, r.Key)
			}
			return nil
		}},
		{name: "rule's own value and key", sink: all, rule: "tagged", count: clients * per, check: func(r sinks.Record, client, seq string) error {
			if string(r.Value) != "tag-"+client+"-"+seq || string(r.Key) != "k"+seq {
				return fmt.Errorf("value %q key %q", r.Value, r.Key)
			}
			return nil
		}},
		{name: "only even messages, own topic", sink: even, rule: "raw", count: clients * per / 2, check: func(r sinks.Record, client, seq string) error {
			if n, _ := strconv.Atoi(seq); n%2 != 0 || r.Topic != "even/"+seq || string(r.Value) != `{"seq":`+seq+`}` {
				return fmt.Errorf("topic %q value %q", r.Topic, r.Value)
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, r := range tc.sink.records() {
				if r.Rule != tc.rule {
					continue
				}
				client := r.Source.ClientID
				if !strings.HasPrefix(r.Source.Topic, "plant/"+client+"/") {
					t.Fatalf("record of %s has source topic %q", client, r.Source.Topic)
				}
				s := seqOf(r)
				if err := tc.check(r, client, s); err != nil {
					t.Fatalf("%s #%s: %v", client, s, err)
				}
				seen[client+"/"+s] = true
			}
			if len(seen) != tc.count {
				t.Fatalf("%d distinct records, want %d", len(seen), tc.count)
			}
		})
	}
	assertBalanced(t, h.p)
}

// seqOf finds a record's sequence number in its raw value or tag.
func seqOf(r sinks.Record) string {
	v := string(r.Value)
	if strings.HasPrefix(v, "tag-") {
		return v[strings.LastIndexByte(v, '-')+1:]
	}
	return strings.TrimSuffix(strings.TrimPrefix(v, `{"seq":`), "}")
}
