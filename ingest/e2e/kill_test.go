package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestKill9 kills the process with SIGKILL while QoS 1 publishers are
// mid-stream, restarts it on the same data directory and expects every
// message that got a PUBACK — before or after the kill — at the webhook.
// Duplicates (records re-sent after the restart) are allowed and logged.
func TestKill9(t *testing.T) {
	h := newHook(t)
	dir := t.TempDir()
	cfg := setup{DataDir: filepath.Join(dir, "data"), HookURL: h.URL(), Body: "array"}.write(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	first := startSluice(t, cfg)
	pubs := newFleet("kill", 4)
	wait := pubs.Start(ctx, first.MQTTAddr, 0)
	defer func() { cancel(); wait() }()
	// Kill once every publisher is well under way and the sink has begun
	// receiving, so records are at every stage: acked and delivered,
	// acked and spooled, in flight without an ack.
	eventually(t, 60*time.Second, func() (bool, string) {
		for _, p := range pubs {
			if p.Acked() < 300 {
				return false, fmt.Sprintf("%s acked %d of 300", p.ID, p.Acked())
			}
		}
		return h.accepted.Load() > 0, "webhook accepted nothing yet"
	})
	first.Kill9()
	killedAt := time.Now()
	wait()
	inflight := 0
	for _, p := range pubs {
		if p.Err() == nil {
			t.Errorf("%s: still publishing after the kill", p.ID)
		}
		inflight += p.Last() - int(p.Acked())
	}
	t.Logf("killed after %d acked messages (%d published without a PUBACK); webhook had %d records",
		pubs.Acked(), inflight, h.accepted.Load())
	beforeRestart := pubs.Acked()

	second := startSluice(t, cfg)
	wait = pubs.Start(ctx, second.MQTTAddr, 200)
	wait()
	for _, p := range pubs {
		if err := p.Err(); err != nil {
			t.Fatalf("publishing after the restart: %v", err)
		}
	}
	if got := pubs.Acked() - beforeRestart; got != 200*int64(len(pubs)) {
		t.Fatalf("after the restart %d messages acked, want %d", got, 200*len(pubs))
	}

	acked := pubs.AckedSeqs()
	eventually(t, 90*time.Second, func() (bool, string) {
		n, sample := h.missing(acked)
		return n == 0, fmt.Sprintf("%d acknowledged messages not at the webhook, e.g. %v", n, sample)
	})
	st := second.waitSettled(t, 60*time.Second)
	f := st.flow("dev", "hook")
	if f.DeadLettered != 0 || len(f.Dropped) != 0 {
		t.Errorf("after the restart: %v, want nothing dead-lettered or dropped", f)
	}
	if h.bad.Load() != 0 {
		t.Errorf("webhook got %d records without a test payload", h.bad.Load())
	}

	arr := h.Arrivals()
	dups, per := duplicates(arr)
	recovered := 0
	for _, p := range pubs {
		for _, a := range arr[p.ID] {
			if a.At.After(killedAt) && a.Seq <= p.Last()-200 {
				recovered++
			}
		}
	}
	t.Logf("acked %d, webhook accepted %d records: %d duplicates %v, %d pre-kill records delivered after the restart; restarted process: %v",
		pubs.Acked(), h.accepted.Load(), dups, per, recovered, f)
	second.Stop()
}
