package command

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// setSyncHook installs a hook run at every accept log sync.
func (h *harness) setSyncHook(fn func(f *os.File, from int64) error) {
	h.svc.walMu.Lock()
	h.svc.wal.syncHook = fn
	h.svc.walMu.Unlock()
}

// TestRoutedBeforeSync: a command reaches the device while its accept
// log sync is still running, but Submit returns (and a sink sees an
// event) only once the sync completed; the events stay in order.
func TestRoutedBeforeSync(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	var got msgs
	device(t, h.addr, "early", true, &got)
	gate := make(chan struct{})
	var release sync.Once
	open := func() { release.Do(func() { close(gate) }) }
	t.Cleanup(open) // runs before the harness stops
	h.setSyncHook(func(*os.File, int64) error { <-gate; return nil })

	type result struct {
		st  Status
		err error
	}
	res := make(chan result, 1)
	go func() {
		st, err := h.svc.Submit(context.Background(), Command{ID: "e1", Device: "early", Payload: []byte("go"), QoS: 1, Principal: "plant"})
		res <- result{st, err}
	}()
	got.wait(t, 1)
	h.waitState("e1", Delivered) // even acknowledged, still not durable
	select {
	case r := <-res:
		t.Fatalf("Submit returned before its accept log sync: %+v, %v", r.st, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	if evs := h.sink.states("e1"); len(evs) > 0 {
		t.Fatalf("sink got events %v before the command was durable", evs)
	}
	open()
	var r result
	select {
	case r = <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("Submit did not return after the sync")
	}
	if r.err != nil || rank(r.st.State) < rank(Queued) {
		t.Fatalf("Submit: %+v, %v", r.st, r.err)
	}
	want := []State{Accepted, Queued, Sent, Delivered}
	if evs := h.waitEvents("e1", len(want)); !slices.Equal(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
}

// TestCrashBeforeSync: a crash after the command was routed but before
// its accept log sync loses the log entry; Submit never succeeded (no
// Kafka offset commit), so the record is submitted again after the
// restart and the device gets the command a second time, with the same
// id — at least once, never lost.
func TestCrashBeforeSync(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, false, nil, nil)
	var got msgs
	c := device(t, h.addr, "crash", true, &got)
	h.svc.crashed.Store(true) // no checkpoint either: the process "dies"
	h.setSyncHook(func(f *os.File, from int64) error {
		// Power lost before the data reached the disk.
		if err := f.Truncate(from); err != nil {
			return err
		}
		return errors.New("simulated crash before the sync")
	})
	cmd := Command{ID: "k-0-7", Device: "crash", Payload: []byte("once"), QoS: 1, Principal: "plant"}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := h.svc.Submit(ctx, cmd)
	cancel()
	if err == nil {
		t.Fatal("Submit succeeded though its command never became durable")
	}
	got.wait(t, 1) // routed before the (failed) sync
	h.disconnect(c, "crash")
	h.stop()
	entries := 0
	if _, _, err := replayWAL(filepath.Join(dir, "commands"), func(walEntry) error { entries++; return nil }); err != nil {
		t.Fatal(err)
	}
	if entries != 0 {
		t.Fatalf("%d accept log entries survived the simulated crash", entries)
	}

	sink := newRecSink()
	h2 := start(t, dir, false, sink, nil)
	if _, ok, _ := h2.svc.Get(cmd.ID); ok {
		t.Fatal("the command survived the crash: the test proves nothing")
	}
	device(t, h2.addr, "crash", true, &got)
	if _, err := h2.svc.Submit(context.Background(), cmd); err != nil { // Kafka redelivers the record
		t.Fatal(err)
	}
	if p := got.wait(t, 2); !slices.Equal(p, []string{"once", "once"}) {
		t.Errorf("device got %q, want the command twice", p)
	}
	h2.waitState(cmd.ID, Delivered)
	want := []State{Accepted, Queued, Sent, Delivered}
	if evs := h2.waitEvents(cmd.ID, len(want)); !slices.Equal(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
}
