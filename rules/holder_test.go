package rules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/ingest"
)

// twoRules returns two rules sending every message on t/# to sink.
func twoRules(sink string) Config {
	return Config{Rules: []RuleConfig{
		{Name: "r1", Topics: []string{"t/#"}, To: []TargetConfig{{Sink: sink}}},
		{Name: "r2-" + sink, Topics: []string{"t/+"}, Let: map[string]string{"s": "level(1)"}, When: `s != ""`,
			To: []TargetConfig{{Sink: sink, Topic: "{{ s }}"}}},
	}}
}

func sinksOf(out []ingest.Output) []string {
	var s []string
	for _, o := range out {
		s = append(s, o.Sink)
	}
	return s
}

func routeSample(h ingest.Router, topic string) []ingest.Output {
	in, _ := (&Sample{Topic: topic, Payload: "{}"}).Input()
	return h.Route(in, nil)
}

func TestHolderReload(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := Options{Metrics: NewMetrics(reg)}
	h, errs := NewHolder(twoRules("a"), opts)
	if errs != nil {
		t.Fatal(errs)
	}
	v1 := h.Version()
	if got := sinksOf(routeSample(h, "t/x")); len(got) != 2 || got[0] != "a" || got[1] != "a" {
		t.Fatalf("v1 outputs %v", got)
	}

	t.Run("valid swap", func(t *testing.T) {
		if err := h.Reload(twoRules("b"), Options{}); err != nil {
			t.Fatal(err)
		}
		if got := sinksOf(routeSample(h, "t/x")); len(got) != 2 || got[0] != "b" {
			t.Fatalf("v2 outputs %v", got)
		}
		if h.Version().Hash == v1.Hash {
			t.Fatal("version hash did not change")
		}
		if got := metricValue(t, reg, "sluice_rule_matched_total", "r2-a"); got != 0 {
			t.Errorf("series of removed rule r2-a still exported: %v", got)
		}
		if got := metricValue(t, reg, "sluice_rule_matched_total", "r1"); got != 2 {
			t.Errorf("r1 matched = %v, want 2 (kept across reload)", got)
		}
	})

	t.Run("invalid refused", func(t *testing.T) {
		before := h.Version()
		bad := twoRules("c")
		bad.Rules[1].When = "nope > 1"
		err := h.Reload(bad, Options{})
		var re *ReloadError
		if !errors.As(err, &re) || len(re.Errs) != 1 {
			t.Fatalf("err = %v, want a ReloadError with one error", err)
		}
		if h.Version().Hash != before.Hash || h.Engine().Version().LoadedAt != before.LoadedAt {
			t.Fatal("active rule set changed after a refused reload")
		}
		if got := sinksOf(routeSample(h, "t/x")); len(got) != 2 || got[0] != "b" {
			t.Fatalf("outputs after refused reload %v", got)
		}
	})
}

func TestHolderWatch(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		// A distinct mtime per write even on coarse file systems.
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(time.Duration(len(src)) * time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "- name: a\n  topics: [t]\n  to: [{sink: one}]\n")
	h, errs := NewHolder(Config{Files: []string{dir}}, Options{})
	if errs != nil {
		t.Fatal(errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.Watch(ctx, WatchOptions{Interval: 10 * time.Millisecond}); err != nil {
			t.Error(err)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	v1 := h.Version()
	write("b.yaml", "- name: b\n  topics: [t]\n  to: [{sink: two}]\n")
	waitFor("new file picked up", func() bool { return h.Version().Rules == 2 })

	v2 := h.Version()
	if v2.Hash == v1.Hash {
		t.Fatal("hash unchanged")
	}
	write("b.yaml", "- name: b\n  topics: [t]\n  when: broken(\n  to: [{sink: two}]\n")
	time.Sleep(100 * time.Millisecond) // ten polls
	if h.Version().LoadedAt != v2.LoadedAt {
		t.Fatal("invalid file replaced the active rules")
	}
	write("b.yaml", "- name: b2\n  topics: [t]\n  to: [{sink: three}]\n")
	waitFor("fixed file picked up", func() bool {
		// The watcher may catch the file half written (a valid, shorter
		// rule set) before the whole of it.
		r := h.Engine().Rules()
		return len(r) == 2 && r[1] == "b2"
	})
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor("deleted file dropped", func() bool { return h.Version().Rules == 1 })
}

// TestConcurrentRouteAndReload routes from many goroutines while rule sets
// are swapped: every message must be evaluated by one rule set only (both
// outputs to the same sink) and the race detector must stay quiet.
func TestConcurrentRouteAndReload(t *testing.T) {
	h, errs := NewHolder(twoRules("a"), Options{})
	if errs != nil {
		t.Fatal(errs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, _ := (&Sample{Topic: "t/x", Payload: `{"v": 1}`}).Input()
			var dst []ingest.Output
			for ctx.Err() == nil {
				dst = h.Route(in, dst[:0])
				if len(dst) != 2 || dst[0].Sink != dst[1].Sink || dst[1].Topic != "x" {
					t.Errorf("mixed or wrong outputs across a swap: %+v", dst)
					return
				}
			}
		}()
	}
	sinks := []string{"a", "b"}
	for i := 0; ctx.Err() == nil; i++ {
		if err := h.Reload(twoRules(sinks[i%2]), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
