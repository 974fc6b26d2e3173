package ingest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/sinks"
)

// poisoningDecoder decodes a payload into {"body": payload}; releasing it
// overwrites the body, as the next payload reusing a recycled map would.
type poisoningDecoder struct{ released atomic.Int64 }

type poisonOnRelease struct {
	m map[string]any
	d *poisoningDecoder
}

func (r *poisonOnRelease) Release() {
	r.m["body"] = "poisoned"
	r.d.released.Add(1)
}

func (d *poisoningDecoder) Decode(_ string, payload []byte) (any, error) {
	return map[string]any{"body": string(payload)}, nil
}

func (d *poisoningDecoder) DecodeRecycled(_ string, payload []byte) (any, Releaser, error) {
	m := map[string]any{"body": string(payload)}
	return m, &poisonOnRelease{m, d}, nil
}

// bodyRouter routes every message to sink "mem" and counts the payloads
// it saw already released.
type bodyRouter struct{ poisoned atomic.Int64 }

func (r *bodyRouter) Route(in *Input, dst []Output) []Output {
	if m, _ := in.Payload.(map[string]any); m == nil || m["body"] != string(in.Msg.Payload) {
		r.poisoned.Add(1)
	}
	return append(dst, Output{Rule: "all", Sink: "mem"})
}

func startRecycling(t *testing.T) (*harness, *poisoningDecoder, *bodyRouter) {
	t.Helper()
	dec, router := &poisoningDecoder{}, &bodyRouter{}
	h := startWith(t, testConfig(t), Options{Router: router, Decoder: dec, Sinks: map[string]sinks.Sink{"mem": &memSink{}}})
	return h, dec, router
}

// TestRecycledPayloadReleasedAfterRouting: a recycling decoder's payload is
// released once per message, after the router is done with it.
func TestRecycledPayloadReleasedAfterRouting(t *testing.T) {
	h, dec, router := startRecycling(t)
	for i := range 50 {
		tapPublish(t, h.p, "plant/a", fmt.Sprintf(`{"n":%d}`, i))
	}
	if got := dec.released.Load(); got != 50 {
		t.Errorf("released %d payloads, want 50", got)
	}
	if got := router.poisoned.Load(); got != 0 {
		t.Errorf("the router saw %d released payloads", got)
	}
}

// TestTapKeepsRecycledPayload: a message a tap keeps is never released
// (the console explains it later); one the tap drops or does not match
// is.
func TestTapKeepsRecycledPayload(t *testing.T) {
	h, dec, _ := startRecycling(t)
	tap, err := h.p.OpenTap("tapped/#", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	tapPublish(t, h.p, "tapped/1", "first")  // kept by the tap
	tapPublish(t, h.p, "tapped/2", "second") // the tap is full: dropped
	tapPublish(t, h.p, "other/1", "third")   // not tapped
	if got := dec.released.Load(); got != 2 {
		t.Errorf("released %d payloads, want 2 (all but the tapped one)", got)
	}
	evs := drain(tap)
	if len(evs) != 1 {
		t.Fatalf("tap saw %d events, want 1", len(evs))
	}
	if m, _ := evs[0].Payload.(map[string]any); m["body"] != "first" {
		t.Errorf("tapped payload = %v, want its body intact", evs[0].Payload)
	}
}
