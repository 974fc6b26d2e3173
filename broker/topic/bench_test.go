package topic

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchTree builds a tree of n subscriptions over topics shaped like
// "site/S/device/D/metric/M": 70% exact, 20% with '+', 10% ending in '#'.
// It returns the tree and a set of topics to publish on.
func benchTree(n int) (*Tree, [][]byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := NewTree()
	for i := range n {
		s, d, m := rng.IntN(20), rng.IntN(500), rng.IntN(10)
		var f string
		switch p := rng.IntN(10); {
		case p < 7:
			f = fmt.Sprintf("site/%d/device/%d/metric/%d", s, d, m)
		case p < 8:
			f = fmt.Sprintf("site/+/device/%d/metric/%d", d, m)
		case p < 9:
			f = fmt.Sprintf("site/%d/device/+/metric/+", s)
		default:
			f = fmt.Sprintf("site/%d/device/%d/#", s, d)
		}
		tr.Add(Sub{ClientID: fmt.Sprint("client-", i), Filter: f, QoS: 1})
	}
	tr.Add(Sub{ClientID: "audit", Filter: "#"})
	topics := make([][]byte, 1024)
	for i := range topics {
		topics[i] = fmt.Appendf(nil, "site/%d/device/%d/metric/%d", rng.IntN(20), rng.IntN(500), rng.IntN(10))
	}
	return tr, topics
}

// BenchmarkMatch matches realistic topics against 10k mixed subscriptions.
func BenchmarkMatch(b *testing.B) {
	tr, topics := benchTree(10_000)
	dst := make([]Sub, 0, 64)
	matched, ops := 0, 0
	b.ReportAllocs()
	for ; b.Loop(); ops++ {
		dst = tr.Match(topics[ops%len(topics)], dst[:0])
		matched += len(dst)
	}
	b.ReportMetric(float64(matched)/float64(ops), "subs/op")
}

// BenchmarkMatchParallel is BenchmarkMatch from every core at once, the
// read-lock path under contention.
func BenchmarkMatchParallel(b *testing.B) {
	tr, topics := benchTree(10_000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]Sub, 0, 64)
		for i := 0; pb.Next(); i++ {
			dst = tr.Match(topics[i%len(topics)], dst[:0])
		}
	})
}

// BenchmarkMatchFanout100 matches one topic reaching 100 subscribers
// (50 exact, 30 '+', 20 '#') among 10k others.
func BenchmarkMatchFanout100(b *testing.B) {
	tr, _ := benchTree(10_000)
	for i := range 100 {
		f := "fleet/truck-7/gps"
		switch {
		case i >= 80:
			f = "fleet/#"
		case i >= 50:
			f = "fleet/+/gps"
		}
		tr.Add(Sub{ClientID: fmt.Sprint("fan-", i), Filter: f, QoS: 1})
	}
	topic := []byte("fleet/truck-7/gps")
	dst := make([]Sub, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		dst = tr.Match(topic, dst[:0])
	}
	if len(dst) != 101 { // 100 + the "#" audit subscriber
		b.Fatalf("matched %d, want 101", len(dst))
	}
}

// BenchmarkTreeAddRemove measures subscription churn.
func BenchmarkTreeAddRemove(b *testing.B) {
	tr, _ := benchTree(10_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := Sub{ClientID: "churn", Filter: fmt.Sprintf("site/%d/device/+/metric/x", i%100)}
		tr.Add(s)
		tr.Remove(s.ClientID, "", s.Filter)
	}
}

// BenchmarkSharedPick picks from a 10-member group with one offline member.
func BenchmarkSharedPick(b *testing.B) {
	var p SharedPicker
	m := make([]Sub, 10)
	for i := range m {
		m[i] = Sub{ClientID: fmt.Sprint("w", i), Group: "g", Filter: "jobs/#"}
	}
	online := func(id string) bool { return id != "w3" }
	b.ReportAllocs()
	for b.Loop() {
		p.Pick("g", "jobs/#", m, online)
	}
}

// BenchmarkRetainedMatch visits the 10 retained topics under one device
// among 100k retained topics.
func BenchmarkRetainedMatch(b *testing.B) {
	var r Retained[int]
	for s := range 20 {
		for d := range 500 {
			for m := range 10 {
				r.Set(fmt.Sprintf("site/%d/device/%d/metric/%d", s, d, m), m)
			}
		}
	}
	n := 0
	visit := func(string, int) bool { n++; return true }
	b.ReportAllocs()
	for b.Loop() {
		r.Match("site/3/device/42/metric/+", visit)
	}
	if n == 0 {
		b.Fatal("no matches")
	}
}
