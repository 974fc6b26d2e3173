package auth

import (
	"context"
	"fmt"
	"testing"
)

// rules50 is a plausible ACL of 50 rules: per-line denies and allows,
// user-scoped rules, placeholders, and a catch-all for reading.
func rules50() []ACLRule {
	var rs []ACLRule
	for i := range 10 {
		rs = append(rs, ACLRule{Permission: "deny", Action: "publish", Topic: fmt.Sprintf("plant/line%d/secret/#", i)})
	}
	for i := range 20 {
		rs = append(rs, ACLRule{Permission: "allow", Action: "publish", Topic: fmt.Sprintf("plant/line%d/+/telemetry", i)})
	}
	for i := range 10 {
		rs = append(rs, ACLRule{Permission: "allow", Topic: fmt.Sprintf("ops/team%d/#", i), Users: []string{fmt.Sprintf("ops%d", i), "bench"}})
	}
	for i := range 7 {
		rs = append(rs, ACLRule{Permission: "allow", Action: "subscribe", Topic: fmt.Sprintf("alerts/%d/+", i)})
	}
	rs = append(rs,
		ACLRule{Permission: "allow", Topic: "clients/%c/#"},
		ACLRule{Permission: "allow", Topic: "devices/%u/+/data"},
		ACLRule{Permission: "allow", Action: "subscribe", Topic: "public/#"},
	)
	return rs
}

func BenchmarkCanPublish(b *testing.B) {
	acl, err := NewACL(rules50())
	if err != nil {
		b.Fatal(err)
	}
	if len(acl.rules) != 50 {
		b.Fatalf("%d rules", len(acl.rules))
	}
	cases := []struct {
		name  string
		id    Identity
		topic string
		want  bool
	}{
		{"first rule", ident("bench", "c1"), "plant/line0/secret/x", false},
		{"rule 29", ident("bench", "c1"), "plant/line19/press/telemetry", true},
		{"rule 49", ident("bench", "c1"), "devices/bench/s1/data", true},
		{"no rule (deny)", ident("bench", "c1"), "factory/other/topic/deep", false},
		{"near miss (deny)", ident("bench", "c1"), "plant/line7/press/status", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if got := acl.CanPublish(c.id, c.topic); got != c.want {
				b.Fatalf("CanPublish = %v, want %v", got, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				acl.CanPublish(c.id, c.topic)
			}
		})
	}
	b.Run("parallel rule 49", func(b *testing.B) {
		id := ident("bench", "c1")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				acl.CanPublish(id, "devices/bench/s1/data")
			}
		})
	})
}

func BenchmarkCanSubscribe(b *testing.B) {
	acl, err := NewACL(rules50())
	if err != nil {
		b.Fatal(err)
	}
	id := ident("bench", "c1")
	for _, c := range []struct {
		name, filter string
		want         bool
	}{
		{"last rule", "public/news/#", true},
		{"no rule (deny)", "factory/+/topic/#", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			if got := acl.CanSubscribe(id, c.filter); got != c.want {
				b.Fatalf("CanSubscribe = %v, want %v", got, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				acl.CanSubscribe(id, c.filter)
			}
		})
	}
}

// BenchmarkAuthenticate measures a login at the default hash costs.
func BenchmarkAuthenticate(b *testing.B) {
	for _, algo := range []string{AlgoArgon2id, AlgoBcrypt} {
		b.Run(algo, func(b *testing.B) {
			h, err := Hash("pw", algo)
			if err != nil {
				b.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Users = []UserConfig{{Username: "u", PasswordHash: h}}
			a, err := New(cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(context.Background(), Credentials{Username: "u", Password: []byte("pw")}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
