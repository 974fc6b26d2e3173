package rules

import (
	"slices"
	"strings"
	"testing"
)

func TestPayloadKeys(t *testing.T) {
	tests := []struct {
		name string
		rule string
		keys []string
		all  bool
	}{
		{"no payload", `when: level(0) == "a"`, nil, false},
		{"member reads", `when: payload.temp > 1 && payload["hum"] < 2 && payload.vib.x > 0`, []string{"temp", "hum", "vib"}, false},
		{"optional member", `when: (payload?.temp ?? 0) > 1`, []string{"temp"}, false},
		{"template", `to: [{sink: s, topic: 'x.{{ payload.site }}'}]`, []string{"site"}, false},
		{"transform object", `transform: '{"t": payload.temp, "ts": received_ms}'`, []string{"temp"}, false},
		{"whole payload", `transform: payload`, nil, true},
		{"computed key", `when: payload[level(0)] != nil`, nil, true},
		{"let binds payload", `let: {p: payload}` + "\n  " + `when: p.temp > 1`, nil, true},
		{"function of payload", `when: len(payload) > 2`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "- name: r\n  topics: [\"#\"]\n  " + tc.rule + "\n"
			if !strings.Contains(tc.rule, "to:") {
				src += "  to: [{sink: s}]\n"
			}
			e := mustCompile(t, src)
			keys, all := e.PayloadKeys()
			if all != tc.all || !tc.all && !sameSet(keys, tc.keys) {
				t.Fatalf("PayloadKeys = %v, all %v; want %v, all %v", keys, all, tc.keys, tc.all)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
