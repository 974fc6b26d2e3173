package console

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

func TestTapDecisions(t *testing.T) {
	r := startRig(t, Options{})
	events, res := r.openStream(t, "/api/v1/tap?filter=plant/%2B/temp")
	if res.StatusCode != 200 {
		t.Fatalf("tap: %s", res.Status)
	}
	next(t, events, "open", func(o map[string]any) bool { return o["filter"] == "plant/+/temp" })
	c := e2etest.ConnectV3(t, r.mqtt, "dev-7")
	for _, m := range []struct{ topic, payload string }{
		{"other/x", `{"temp":99}`}, // outside the tap's filter
		{"plant/a/temp", `{"temp":90}`},
		{"plant/b/temp", `{"temp":10}`},
		{"plant/c/temp", `oops`},
	} {
		if tok := c.Publish(m.topic, 1, false, m.payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", m.topic, tok.Error())
		}
	}
	type want struct {
		outcome, when string
		outputs       []string // sink>topic=value ("raw" when the payload is sent as is), or "dead-letter"
		err           string
	}
	tests := []struct {
		topic, payload string
		rules          map[string]want
	}{
		{"plant/a/temp", `{"temp":90}`, map[string]want{
			"hot": {"routed", "true", []string{`mem>alerts.a={"site":"a","temp":90}`}, ""},
			"all": {"routed", "", []string{"mem>=raw"}, ""},
		}},
		{"plant/b/temp", `{"temp":10}`, map[string]want{
			"hot": {"filtered", "false", nil, ""},
			"all": {"routed", "", []string{"mem>=raw"}, ""},
		}},
		{"plant/c/temp", `oops`, map[string]want{
			"hot": {"error", "error", []string{"dead-letter"}, "payload not decoded"},
			"all": {"routed", "", []string{"mem>=raw"}, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			m := next[TapMessage](t, events, "message", nil)
			if m.Topic != tt.topic || m.Payload.Text != tt.payload || m.ClientID != "dev-7" || m.QoS != 1 || m.DeadLettered {
				t.Fatalf("message = %+v, want %s %s from dev-7", m, tt.topic, tt.payload)
			}
			if len(m.Rules) != 2 {
				t.Fatalf("rules = %+v, want both rules' decisions", m.Rules)
			}
			for _, d := range m.Rules {
				w := tt.rules[d.Rule]
				var outs []string
				for _, o := range d.Outputs {
					switch {
					case o.DeadLetter:
						outs = append(outs, "dead-letter")
					case o.Value == nil:
						outs = append(outs, o.Sink+">"+o.Topic+"=raw")
					default:
						outs = append(outs, o.Sink+">"+o.Topic+"="+o.Value.Text)
					}
				}
				if d.Outcome != w.outcome || d.When != w.when || !d.Matched ||
					strings.Join(outs, " ") != strings.Join(w.outputs, " ") || !strings.Contains(d.Error, w.err) {
					t.Errorf("rule %s: %+v (outputs %v), want %+v", d.Rule, d, outs, w)
				}
			}
		})
	}
}

func TestTapRateLimit(t *testing.T) {
	r := startRig(t, Options{TapRate: 3})
	events, _ := r.openStream(t, "/api/v1/tap?filter=%23")
	next(t, events, "open", func(map[string]any) bool { return true })
	c := e2etest.ConnectV3(t, r.mqtt, "burst")
	start := time.Now()
	for range 20 {
		c.Publish("plant/x/temp", 0, false, `{"temp":1}`)
	}
	st := next(t, events, "status", func(s TapStatus) bool { return s.Sent+s.Skipped+s.Dropped == 20 })
	seconds := int64(time.Since(start)/time.Second) + 1
	if st.Sent > 3*seconds || st.Skipped == 0 {
		t.Errorf("status %+v after %ds at 3 messages/s: want at most %d sent and some skipped", st, seconds, 3*seconds)
	}
}

func TestPreview(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		limit     int
		encoding  string
		text      string
		truncated bool
	}{
		{"short text", "hello", 10, "utf-8", "hello", false},
		{"cut text", "hello world", 5, "utf-8", "hello", true},
		{"cut inside a character", "añb", 2, "utf-8", "a", true},
		{"binary", "\x00\xff\xfe", 10, "base64", "AP/+", false},
		{"binary cut", "\xff\xfe\xfd\xfc", 2, "base64", "//4=", true},
		{"empty", "", 10, "utf-8", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := preview([]byte(tt.in), tt.limit)
			if p.Encoding != tt.encoding || p.Text != tt.text || p.Truncated != tt.truncated || p.Size != len(tt.in) {
				t.Errorf("preview(%q, %d) = %+v", tt.in, tt.limit, p)
			}
		})
	}
}

func TestRing(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		pushes int
		want   []int64
	}{
		{"empty", 3, 0, nil},
		{"partial", 3, 2, []int64{1, 2}},
		{"full", 3, 3, []int64{1, 2, 3}},
		{"wrapped", 3, 7, []int64{5, 6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ring{buf: make([]Point, tt.size)}
			for i := 1; i <= tt.pushes; i++ {
				r.push(Point{T: int64(i)})
			}
			got := r.points()
			if len(got) != len(tt.want) {
				t.Fatalf("points = %+v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].T != tt.want[i] {
					t.Fatalf("points = %+v, want %v", got, tt.want)
				}
			}
		})
	}
}
