package command

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestHTTPAuth(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	device(t, h.addr, "d1", true, &msgs{})
	cases := []struct {
		name  string
		token string
		body  map[string]any
		want  int
	}{
		{"no token", "", map[string]any{"device": "d1", "payload": "x"}, 401},
		{"wrong token", "nope-nope-nope-nope", map[string]any{"device": "d1", "payload": "x"}, 401},
		{"topic not allowed", testToken, map[string]any{"topic": "other/d1", "payload": "x"}, 403},
		{"allowed", testToken, map[string]any{"device": "d1", "payload": "x"}, 202},
		{"admin any topic", adminToken, map[string]any{"topic": "devices/d1/commands", "payload": "x"}, 202},
		{"unknown device", testToken, map[string]any{"device": "ghost", "payload": "x"}, 422},
		{"bad qos", testToken, map[string]any{"device": "d1", "qos": 3}, 400},
		{"unknown field", testToken, map[string]any{"device": "d1", "bogus": 1}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := h.post(c.token, c.body)
			if code != c.want {
				t.Fatalf("status %d %v, want %d", code, body, c.want)
			}
		})
	}
	t.Run("get", func(t *testing.T) {
		code, body := h.post(testToken, map[string]any{"device": "d1", "payload": "y", "id": "get-1"})
		if code != 202 {
			t.Fatalf("post: %d %v", code, body)
		}
		if code, _ := h.get("", "/api/v1/commands/get-1"); code != 401 {
			t.Errorf("get without token: %d", code)
		}
		if code, _ := h.get(testToken, "/api/v1/commands/nope"); code != 404 {
			t.Errorf("get unknown: %d", code)
		}
		h.waitState("get-1", Delivered)
		code, body = h.get(testToken, "/api/v1/commands/get-1")
		if code != 200 || body["state"] != string(Delivered) {
			t.Errorf("get: %d %v", code, body)
		}
		code, body = h.get(testToken, "/api/v1/commands?state=delivered&device=d1&limit=10")
		if list, _ := body["commands"].([]any); code != 200 || len(list) == 0 {
			t.Errorf("list: %d %v", code, body)
		}
	})
}

func TestDeliveredWithEvents(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	var got msgs
	device(t, h.addr, "d1", true, &got)
	st, err := h.svc.Submit(context.Background(), Command{ID: "c1", Device: "d1", Payload: []byte("on"), QoS: 1, Principal: "plant"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Topic != "devices/d1/commands" {
		t.Errorf("topic %q", st.Topic)
	}
	got.wait(t, 1)
	h.waitState("c1", Delivered)
	want := []State{Accepted, Queued, Sent, Delivered}
	if evs := h.waitEvents("c1", 4); !slices.Equal(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
	// Resubmitting the id publishes nothing.
	if _, err := h.svc.Submit(context.Background(), Command{ID: "c1", Device: "d1", Payload: []byte("on"), QoS: 1, Principal: "plant"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if p := got.payloads(); len(p) != 1 {
		t.Errorf("device got %q after resubmit, want one", p)
	}
}

func TestReplies(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	t.Run("v5 correlation data", func(t *testing.T) {
		device5(t, h.addr, "d5", "done")
		if _, err := h.svc.Submit(context.Background(), Command{ID: "r5", Device: "d5", Payload: []byte("go"), QoS: 1, Principal: "plant"}); err != nil {
			t.Fatal(err)
		}
		st := h.waitState("r5", Responded)
		if string(st.Response) != "done" {
			t.Errorf("response %q", st.Response)
		}
		evs := h.waitEvents("r5", 5)
		if evs[len(evs)-1] != Responded || evs[0] != Accepted {
			t.Errorf("events %v", evs)
		}
	})
	t.Run("3.1.1 reply topic", func(t *testing.T) {
		var got msgs
		c := device(t, h.addr, "d3", true, &got)
		other := device(t, h.addr, "intruder", true, &msgs{})
		if _, err := h.svc.Submit(context.Background(), Command{ID: "r3", Device: "d3", Payload: []byte("go"), QoS: 1, Principal: "plant"}); err != nil {
			t.Fatal(err)
		}
		got.wait(t, 1)
		h.waitState("r3", Delivered)
		// Another client answering for d3 is ignored.
		other.Publish("devices/d3/replies/r3", 1, false, "forged").WaitTimeout(5 * time.Second)
		time.Sleep(100 * time.Millisecond)
		if st, _, _ := h.svc.Get("r3"); st.State != Delivered {
			t.Fatalf("forged reply moved it to %s", st.State)
		}
		c.Publish("devices/d3/replies/r3", 1, false, "ok").WaitTimeout(5 * time.Second)
		st := h.waitState("r3", Responded)
		if string(st.Response) != "ok" {
			t.Errorf("response %q", st.Response)
		}
	})
}

func TestOfflineThenExpiry(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	var got msgs
	c := device(t, h.addr, "off", false, &got)
	h.disconnect(c, "off")
	ctx := context.Background()
	if _, err := h.svc.Submit(ctx, Command{ID: "late", Device: "off", Payload: []byte("1"), QoS: 1, TTL: time.Minute, Principal: "plant"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Submit(ctx, Command{ID: "stale", Device: "off", Payload: []byte("2"), QoS: 1, TTL: time.Second, Principal: "plant"}); err != nil {
		t.Fatal(err)
	}
	h.waitState("late", Queued)
	st := h.waitState("stale", Expired)
	if st.Reason == "" {
		t.Error("expired without reason")
	}
	device(t, h.addr, "off", false, &got)
	if p := got.wait(t, 1); p[0] != "1" {
		t.Errorf("got %q", p)
	}
	h.waitState("late", Delivered)
	time.Sleep(100 * time.Millisecond)
	if p := got.payloads(); len(p) != 1 {
		t.Errorf("expired command delivered: %q", p)
	}
	if evs := h.waitEvents("stale", 3); !slices.Equal(evs, []State{Accepted, Queued, Expired}) {
		t.Errorf("events %v", evs)
	}
}

func TestRejected(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	ctx := context.Background()
	cases := []struct {
		name   string
		cmd    Command
		denied bool
	}{
		{"no such device", Command{ID: "x1", Device: "ghost", QoS: 1, Principal: "plant"}, false},
		{"acl", Command{ID: "x2", Topic: "secret/t", QoS: 1, Principal: "plant"}, true},
		{"unknown principal", Command{ID: "x3", Device: "ghost", QoS: 1, Principal: "kafka:other"}, true},
		{"bad topic", Command{ID: "x4", Topic: "a/+", QoS: 1, Principal: "plant"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.svc.Submit(ctx, c.cmd)
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.Denied != c.denied {
				t.Fatalf("err %v, want rejected (denied %v)", err, c.denied)
			}
			st := h.waitState(c.cmd.ID, Rejected)
			if st.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestPerDeviceOrder(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	var got msgs
	device(t, h.addr, "ord", true, &got)
	const n = 50
	var want []string
	for i := range n {
		p := fmt.Sprint(i)
		want = append(want, p)
		if _, err := h.svc.Submit(context.Background(), Command{Device: "ord", Payload: []byte(p), QoS: 1, Principal: "plant"}); err != nil {
			t.Fatal(err)
		}
	}
	if p := got.wait(t, n); !slices.Equal(p, want) {
		t.Errorf("order %q", p)
	}
}

func TestRestartBetweenAcceptAndDelivery(t *testing.T) {
	dir := t.TempDir()
	sink := newRecSink()
	h := start(t, dir, true, sink, nil)
	c := device(t, h.addr, "rst", false, &msgs{})
	h.disconnect(c, "rst")
	for i := range 5 {
		if _, err := h.svc.Submit(context.Background(), Command{ID: fmt.Sprint("k", i), Device: "rst", Payload: []byte(fmt.Sprint(i)), QoS: 1, TTL: time.Minute, Principal: "plant"}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitState("k4", Queued)
	h.stop()

	h2 := start(t, dir, true, sink, nil)
	var got msgs
	device(t, h2.addr, "rst", false, &got)
	if p := got.wait(t, 5); !slices.Equal(p, []string{"0", "1", "2", "3", "4"}) {
		t.Errorf("after restart got %q", p)
	}
	for i := range 5 {
		h2.waitState(fmt.Sprint("k", i), Delivered)
	}
	time.Sleep(200 * time.Millisecond)
	if p := got.payloads(); len(p) != 5 {
		t.Errorf("duplicates after restart: %q", p)
	}
	if evs := h2.waitEvents("k0", 4); !slices.Equal(evs[len(evs)-2:], []State{Sent, Delivered}) || evs[0] != Accepted {
		t.Errorf("events %v", evs)
	}
}

func TestEventSinkRetry(t *testing.T) {
	sink := newRecSink()
	sink.fail = 3
	h := start(t, t.TempDir(), false, sink, func(c *Config) { c.Outbox.RetryInitial = 5 * time.Millisecond })
	device(t, h.addr, "ev", true, &msgs{})
	if _, err := h.svc.Submit(context.Background(), Command{ID: "e1", Device: "ev", QoS: 1, Principal: "plant"}); err != nil {
		t.Fatal(err)
	}
	if evs := h.waitEvents("e1", 4); !slices.Equal(evs, []State{Accepted, Queued, Sent, Delivered}) {
		t.Errorf("events %v", evs)
	}
}

func TestRetentionPurge(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, func(c *Config) { c.Retention = time.Millisecond })
	device(t, h.addr, "pd", true, &msgs{})
	ctx := context.Background()
	for _, id := range []string{"p1", "p2"} {
		if _, err := h.svc.Submit(ctx, Command{ID: id, Device: "pd", QoS: 1, Principal: "plant"}); err != nil {
			t.Fatal(err)
		}
		h.waitState(id, Delivered)
	}
	time.Sleep(100 * time.Millisecond) // written and out of memory
	h.svc.purge(time.Now())
	for _, id := range []string{"p1", "p2"} {
		if _, ok, err := h.svc.Get(id); ok || err != nil {
			t.Errorf("%s still known after its retention (err %v)", id, err)
		}
	}
	// A purged id is new again.
	if st, err := h.svc.Submit(ctx, Command{ID: "p1", Device: "pd", QoS: 1, Principal: "plant"}); err != nil || st.State == Delivered {
		t.Errorf("resubmit after purge: %v %v", st.State, err)
	}
}

// TestShortTTL: a TTL is not raised to the MQTT expiry's whole second, and
// a deadline already passed (a Kafka record that waited out its TTL)
// ends the command expired without sending it.
func TestShortTTL(t *testing.T) {
	h := start(t, t.TempDir(), false, nil, nil)
	var got msgs
	c := device(t, h.addr, "ttl", false, &got)
	h.disconnect(c, "ttl")
	ctx := context.Background()
	cases := []struct {
		name       string
		cmd        Command
		deadlineIn time.Duration // from the submit; 0: none
		want       []State
	}{
		{"deadline passed", Command{ID: "t1", TTL: time.Minute}, -time.Millisecond, []State{Accepted, Expired}},
		{"sub-second ttl", Command{ID: "t2", TTL: 300 * time.Millisecond}, 0, []State{Accepted, Queued, Expired}},
		{"deadline before ttl", Command{ID: "t3", TTL: time.Hour}, 300 * time.Millisecond, []State{Accepted, Queued, Expired}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cmd.Device, tc.cmd.Payload, tc.cmd.QoS, tc.cmd.Principal = "ttl", []byte(tc.cmd.ID), 1, "plant"
			t0 := time.Now()
			if tc.deadlineIn != 0 {
				tc.cmd.Deadline = t0.Add(tc.deadlineIn)
			}
			if _, err := h.svc.Submit(ctx, tc.cmd); err != nil {
				t.Fatal(err)
			}
			st := h.waitState(tc.cmd.ID, Expired)
			// A TTL rounded up to the MQTT expiry's whole second would
			// expire 1 s or more after acceptance.
			if d := st.UpdatedAt.Sub(st.CreatedAt); d >= time.Second {
				t.Errorf("expired %s after acceptance: the TTL was rounded up", d)
			}
			if evs := h.waitEvents(tc.cmd.ID, len(tc.want)); !slices.Equal(evs, tc.want) {
				t.Errorf("events %v, want %v (%s)", evs, tc.want, st.Reason)
			}
		})
	}
	device(t, h.addr, "ttl", false, &got)
	time.Sleep(200 * time.Millisecond)
	if p := got.payloads(); len(p) != 0 {
		t.Errorf("expired commands delivered: %q", p)
	}
}

// TestCrashAfterAccept: commands acknowledged by Submit (in the accept
// log) and never checkpointed into the store survive a crash: the next
// start replays them and the device gets each once, in order.
func TestCrashAfterAccept(t *testing.T) {
	dir := t.TempDir()
	sink := newRecSink()
	h := start(t, dir, true, sink, nil)
	c := device(t, h.addr, "wal", false, &msgs{})
	h.disconnect(c, "wal")
	h.svc.crashed.Store(true)
	for i := range 5 {
		if _, err := h.svc.Submit(context.Background(), Command{ID: fmt.Sprint("w", i), Device: "wal", Payload: []byte(fmt.Sprint(i)), QoS: 1, TTL: time.Minute, Principal: "plant"}); err != nil {
			t.Fatal(err)
		}
	}
	h.stop()
	if d, err := openDB(filepath.Join(dir, "commands")); err != nil {
		t.Fatal(err)
	} else {
		_, ok, _ := d.get("w0")
		d.close()
		if ok {
			t.Fatal("w0 reached the store: the crash was not simulated")
		}
	}

	h2 := start(t, dir, true, sink, nil)
	var got msgs
	device(t, h2.addr, "wal", false, &got)
	if p := got.wait(t, 5); !slices.Equal(p, []string{"0", "1", "2", "3", "4"}) {
		t.Errorf("after the crash got %q", p)
	}
	for i := range 5 {
		h2.waitState(fmt.Sprint("w", i), Delivered)
	}
	time.Sleep(200 * time.Millisecond)
	if p := got.payloads(); len(p) != 5 {
		t.Errorf("duplicates after the crash: %q", p)
	}
	if evs := h2.waitEvents("w0", 2); evs[0] != Accepted || evs[len(evs)-1] != Delivered {
		t.Errorf("events %v", evs)
	}
	segs, _ := segments(filepath.Join(dir, "commands"))
	if len(segs) > 2 {
		t.Errorf("%d accept log segments left after checkpoints: %v", len(segs), segs)
	}
}

// TestEventsSurviveRestart: status events no sink took before a restart
// are rebuilt from the store (which keeps them as references to their
// command's history) and delivered after it, in order, complete.
func TestEventsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	down := newRecSink()
	down.fail = 1 << 30
	h := start(t, dir, false, down, nil)
	device5(t, h.addr, "ev5", "done")
	if _, err := h.svc.Submit(context.Background(), Command{ID: "r1", Device: "ev5", Payload: []byte("go"), QoS: 1, CorrelationID: "c-9", Principal: "plant"}); err != nil {
		t.Fatal(err)
	}
	h.waitState("r1", Responded)
	h.stop()

	up := newRecSink()
	h2 := start(t, dir, false, up, nil)
	want := []State{Accepted, Queued, Sent, Delivered, Responded}
	if got := h2.waitEvents("r1", len(want)); !slices.Equal(got, want) {
		t.Fatalf("events after the restart %v, want %v", got, want)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for i, e := range up.evs {
		if e.Device != "ev5" || e.Topic != "devices/ev5/commands" || e.CorrelationID != "c-9" || e.At.IsZero() {
			t.Errorf("event %d: %+v", i, e)
		}
		if (e.State == Responded) != (string(e.Response) == "done") {
			t.Errorf("event %d (%s) response %q", i, e.State, e.Response)
		}
	}
}

// TestPurgedNotReplayed: a command purged after its retention does not
// come back from an accept log segment that still holds it.
func TestPurgedNotReplayed(t *testing.T) {
	dir := t.TempDir()
	short := func(c *Config) { c.Retention = 50 * time.Millisecond }
	h := start(t, dir, false, nil, short)
	var got msgs
	device(t, h.addr, "pg", false, &got)
	if _, err := h.svc.Submit(context.Background(), Command{ID: "old", Device: "pg", Payload: []byte("1"), QoS: 1, Principal: "plant"}); err != nil {
		t.Fatal(err)
	}
	h.waitState("old", Delivered)
	time.Sleep(200 * time.Millisecond) // checkpointed, out of memory, past the retention
	h.svc.purge(time.Now())
	if _, ok, _ := h.svc.Get("old"); ok {
		t.Fatal("not purged")
	}
	if segs, _ := segments(filepath.Join(dir, "commands")); len(segs) == 0 {
		t.Fatal("no accept log segment left to replay: the test proves nothing")
	}
	h.stop()

	h2 := start(t, dir, false, nil, short)
	device(t, h2.addr, "pg", false, &got)
	time.Sleep(200 * time.Millisecond)
	if _, ok, _ := h2.svc.Get("old"); ok {
		t.Error("purged command back after the restart")
	}
	if p := got.payloads(); len(p) != 1 {
		t.Errorf("device got %q, want the command once", p)
	}
}
