package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestSinkOutage has the webhook answer 503 while publishers keep going,
// then recover: the spool keeps accepting (publishers are acked during the
// outage), the backlog drains while live traffic continues, nothing
// acknowledged is lost, each client's records arrive in publish order
// (re-sends of an already-delivered prefix allowed), and the accounting
// balances.
func TestSinkOutage(t *testing.T) {
	h := newHook(t)
	h.SetAnswer(refuseAll(http.StatusServiceUnavailable))
	dir := t.TempDir()
	cfg := setup{DataDir: filepath.Join(dir, "data"), HookURL: h.URL(), Body: "array"}.write(t, dir)
	p := startSluice(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pubs := newFleet("outage", 4)
	for _, pub := range pubs {
		pub.Pause = time.Millisecond // live traffic, not a flood
	}
	wait := pubs.Start(ctx, p.MQTTAddr, 0)
	defer func() { cancel(); wait() }()

	// Down: publishers are acknowledged from the spool, the sink refuses.
	eventually(t, 60*time.Second, func() (bool, string) {
		return pubs.Acked() >= 2000 && h.refused.Load() >= 3,
			fmt.Sprintf("acked %d of 2000, webhook refused %d requests", pubs.Acked(), h.refused.Load())
	})
	if n := h.accepted.Load(); n != 0 {
		t.Fatalf("webhook accepted %d records while answering 503", n)
	}
	st, err := p.ingest()
	if err != nil {
		t.Fatal(err)
	}
	if f := st.flow("dev", "hook"); f.Buffered < 1000 {
		t.Errorf("during the outage: %v, want the acked messages buffered", f)
	}
	backlog := pubs.AckedSeqs()
	ackedAtRecovery := pubs.Acked()
	t.Logf("outage: %d messages acked, webhook refused %d requests; %v", ackedAtRecovery, h.refused.Load(), st.flow("dev", "hook"))

	// Up: the backlog drains while the publishers go on.
	h.SetAnswer(nil)
	recovered := time.Now()
	eventually(t, 90*time.Second, func() (bool, string) {
		n, sample := h.missing(backlog)
		return n == 0, fmt.Sprintf("%d backlog messages not delivered, e.g. %v", n, sample)
	})
	drained := time.Since(recovered)
	ackedWhileDraining := pubs.Acked() - ackedAtRecovery
	// More live traffic after the drain, then stop publishing.
	target := pubs.Acked() + 1000
	eventually(t, 60*time.Second, func() (bool, string) {
		return pubs.Acked() >= target, fmt.Sprintf("acked %d of %d", pubs.Acked(), target)
	})
	cancel()
	wait()
	for _, pub := range pubs {
		if err := pub.Err(); err != nil {
			t.Errorf("publisher: %v", err)
		}
	}

	acked := pubs.AckedSeqs()
	eventually(t, 90*time.Second, func() (bool, string) {
		n, sample := h.missing(acked)
		return n == 0, fmt.Sprintf("%d acknowledged messages not delivered, e.g. %v", n, sample)
	})
	arr := h.Arrivals()
	for _, client := range sortedKeys(arr) {
		if v := orderViolations(arr[client]); len(v) > 0 {
			t.Errorf("%s: order broken: %v", client, v)
		}
	}
	st = p.waitSettled(t, 60*time.Second)
	p.checkEndpoints(t, st)
	f := st.flow("dev", "hook")
	if f.DeadLettered != 0 || len(f.Dropped) != 0 {
		t.Errorf("%v, want nothing dead-lettered or dropped", f)
	}
	if f.Retried == 0 {
		t.Errorf("%v, want the refused writes counted as retried", f)
	}
	if f.Delivered != pubs.Acked() {
		t.Errorf("delivered %d, want the %d acked messages", f.Delivered, pubs.Acked())
	}
	dups, per := duplicates(arr)
	t.Logf("backlog of %d drained in %v while %d more messages were acked; total acked %d, duplicates %d %v; %v",
		ackedAtRecovery, drained.Round(time.Millisecond), ackedWhileDraining, pubs.Acked(), dups, per, f)
	p.Stop()
}
