package command

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/auth"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want []string // key paths, in order
	}{
		{"defaults", func(*Config) {}, nil},
		{"device topic without placeholder", func(c *Config) { c.DeviceTopic = "devices/all" }, []string{"device_topic"}},
		{"device topic with wildcard", func(c *Config) { c.DeviceTopic = "devices/{device}/#" }, []string{"device_topic"}},
		{"unknown placeholder", func(c *Config) { c.ResponseTopic = "r/{who}" }, []string{"response_topic"}},
		{"reply pattern without id", func(c *Config) { c.ReplyTopic = "r/{device}" }, []string{"reply_topic"}},
		{"reply pattern partial level", func(c *Config) { c.ReplyTopic = "r/x{id}" }, []string{"reply_topic"}},
		{"ttl", func(c *Config) { c.DefaultTTL, c.MaxTTL = 2*time.Hour, time.Hour }, []string{"default_ttl"}},
		{"negative", func(c *Config) { c.Retention, c.Outbox.BatchSize = 0, -1 }, []string{"retention", "outbox.batch_size"}},
		{"tokens", func(c *Config) {
			c.Tokens = []TokenConfig{{Name: "a", Token: "0123456789abcdef", Allow: []string{"x/#/y"}}, {Name: "a", Token: "short"}}
		}, []string{"tokens[0].allow[0]", "tokens[1].name", "tokens[1].token"}},
		{"acl", func(c *Config) { c.ACL = []auth.ACLRule{{Permission: "maybe", Topic: "a"}} }, []string{"acl[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mut(&cfg)
			var got []string
			for _, e := range cfg.Validate() {
				got = append(got, strings.SplitN(e.Error(), ":", 2)[0])
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("errors at %v (%v), want %v", got, cfg.Validate(), c.want)
			}
		})
	}
}

func TestReplyPattern(t *testing.T) {
	p, err := compileReplyPattern("devices/{device}/replies/{id}")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic, dev, id string
		ok             bool
	}{
		{"devices/d1/replies/c1", "d1", "c1", true},
		{"devices/d1/replies", "", "", false},
		{"devices/d1/replies/c1/x", "", "", false},
		{"devices/d1/answers/c1", "", "", false},
		{"devices/d1/replies/", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.topic, func(t *testing.T) {
			dev, id, ok := p.match(c.topic)
			if ok != c.ok || (ok && (dev != c.dev || id != c.id)) {
				t.Errorf("match = %q %q %v, want %q %q %v", dev, id, ok, c.dev, c.id, c.ok)
			}
		})
	}
}

func TestTemplateRender(t *testing.T) {
	tm, err := compileTemplate("devices/{device}/replies/{id}", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.render("d", "c"); got != "devices/d/replies/c" {
		t.Errorf("render = %q", got)
	}
	if _, err := compileTemplate("a/{id}", false); err == nil {
		t.Error("{id} accepted where it is not allowed")
	}
}

func TestApplyOrder(t *testing.T) {
	cases := []struct {
		name  string
		steps []State
		want  []State // history
	}{
		{"in order", []State{Accepted, Queued, Sent, Delivered, Responded}, []State{Accepted, Queued, Sent, Delivered, Responded}},
		{"skips filled in", []State{Accepted, Delivered}, []State{Accepted, Queued, Sent, Delivered}},
		{"reply before ack", []State{Accepted, Responded, Delivered}, []State{Accepted, Queued, Sent, Delivered, Responded}},
		{"no way back", []State{Accepted, Sent, Queued}, []State{Accepted, Queued, Sent}},
		{"final stays", []State{Accepted, Expired, Delivered}, []State{Accepted, Expired}},
		{"no failure after delivery", []State{Accepted, Delivered, Failed}, []State{Accepted, Queued, Sent, Delivered}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(DefaultConfig(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := &record{Status: Status{ID: "x"}}
			for _, st := range c.steps {
				s.applyLocked(r, st, "", nil, time.Now())
			}
			var got []State
			for _, tr := range r.Status.History {
				got = append(got, tr.State)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("history %v, want %v", got, c.want)
			}
		})
	}
}
