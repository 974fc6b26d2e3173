package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestKill9 kills the process with SIGKILL while QoS 1 publishers are
// mid-stream, twice (the second time while the restarted process is
// re-sending what the first left in the spool), restarts it on the same
// data directory and expects every message that got a PUBACK, before or
// after a kill, at the webhook. Duplicates (records re-sent after a
// restart) are allowed, counted and logged.
func TestKill9(t *testing.T) {
	const kills, perPhase, final = 2, 300, 200
	h := newHook(t)
	dir := t.TempDir()
	cfg := setup{DataDir: filepath.Join(dir, "data"), HookURL: h.URL(), Body: "array"}.write(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pubs := newFleet("kill", 4)
	wait := func() {}
	defer func() { cancel(); wait() }()

	var killedAt []time.Time
	for k := 1; k <= kills; k++ {
		p := startSluice(t, cfg)
		base := map[string]int64{}
		for _, pub := range pubs {
			base[pub.ID] = pub.Acked()
		}
		wait = pubs.Start(ctx, p.MQTTAddr, 0)
		// Kill once every publisher is well under way and the sink has
		// received something, so records are at every stage: acked and
		// delivered, acked and only spooled, sent without an ack.
		accepted := h.accepted.Load()
		eventually(t, 60*time.Second, func() (bool, string) {
			for _, pub := range pubs {
				if n := pub.Acked() - base[pub.ID]; n < perPhase {
					return false, fmt.Sprintf("kill %d: %s acked %d of %d", k, pub.ID, n, perPhase)
				}
			}
			return h.accepted.Load() > accepted, fmt.Sprintf("kill %d: webhook accepted nothing new", k)
		})
		p.Kill()
		killedAt = append(killedAt, time.Now())
		wait()
		unacked := 0
		for _, pub := range pubs {
			if pub.Err() == nil {
				t.Errorf("%s: still publishing after the kill", pub.ID)
			}
			unacked += pub.Last() - len(pub.AckedSeqs())
		}
		t.Logf("kill %d: %d messages acked and %d published without a PUBACK so far; webhook has %d records",
			k, pubs.Acked(), unacked, h.accepted.Load())
	}

	p := startSluice(t, cfg)
	before := pubs.Acked()
	wait = pubs.Start(ctx, p.MQTTAddr, final)
	wait()
	for _, pub := range pubs {
		if err := pub.Err(); err != nil {
			t.Fatalf("publishing after the restart: %v", err)
		}
	}
	if got := pubs.Acked() - before; got != final*int64(len(pubs)) {
		t.Fatalf("after the last restart %d messages acked, want %d", got, final*len(pubs))
	}

	acked := pubs.AckedSeqs()
	eventually(t, 90*time.Second, func() (bool, string) {
		n, sample := h.missing(acked)
		return n == 0, fmt.Sprintf("%d acknowledged messages not at the webhook, e.g. %v", n, sample)
	})
	st := p.waitSettled(t, 60*time.Second)
	f := st.flow("dev", "hook")
	if f.DeadLettered != 0 || len(f.Dropped) != 0 {
		t.Errorf("after the restart: %v, want nothing dead-lettered or dropped", f)
	}
	if h.bad.Load() != 0 {
		t.Errorf("webhook got %d records without a test payload", h.bad.Load())
	}

	arr := h.Arrivals()
	dups, per := duplicates(arr)
	resent := 0 // records accepted before a kill and again after it
	for _, as := range arr {
		seenBefore := map[int]bool{}
		for _, a := range as {
			if a.At.Before(killedAt[0]) {
				seenBefore[a.Seq] = true
			} else if seenBefore[a.Seq] {
				resent++
				delete(seenBefore, a.Seq)
			}
		}
	}
	t.Logf("acked %d, webhook accepted %d records: %d duplicates %v (%d first delivered before the first kill); last process: %v",
		pubs.Acked(), h.accepted.Load(), dups, per, resent, f)
	p.Stop()
}
