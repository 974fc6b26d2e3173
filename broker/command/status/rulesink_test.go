package status

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/sinks"
)

// submitter records commands; answer decides each call's error.
type submitter struct {
	cmds   []command.Command
	answer func(c command.Command) error
}

func (s *submitter) Submit(_ context.Context, c command.Command) (command.Status, error) {
	s.cmds = append(s.cmds, c)
	if s.answer != nil {
		if err := s.answer(c); err != nil {
			return command.Status{}, err
		}
	}
	return command.Status{ID: c.ID, State: command.Accepted}, nil
}

func rec(rule, key, topic, value string, at time.Time) sinks.Record {
	return sinks.Record{Rule: rule, Key: []byte(key), Topic: topic, Value: []byte(value),
		Source: sinks.Source{Topic: "plant/" + key + "/alarm", ClientID: key, ReceivedAt: at}}
}

func TestRuleSinkWrite(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	busy := errors.New("store busy")
	tests := []struct {
		name       string
		cfg        RuleSinkConfig
		batch      []sinks.Record
		answer     func(c command.Command) error
		wantTopics []string // the topics submitted, in order
		wantFailed map[int]string
		permanent  map[int]bool
		counts     map[string]float64
	}{
		{
			name:       "accepted",
			batch:      []sinks.Record{rec("stop-on-alarm", "m1", "plant/m1/cmd", `{"stop":true}`, at), rec("stop-on-alarm", "m2", "", `{"stop":true}`, at)},
			cfg:        RuleSinkConfig{Topic: "plant/all/cmd"},
			wantTopics: []string{"plant/m1/cmd", "plant/all/cmd"},
			counts:     map[string]float64{resultAccepted: 2},
		},
		{
			name:  "rejected is permanent",
			batch: []sinks.Record{rec("r", "m1", "plant/m1/cmd", "x", at), rec("r", "m2", "plant/m2/cmd", "y", at)},
			answer: func(c command.Command) error {
				return errorIf(c.Topic == "plant/m1/cmd", &command.RejectedError{Reason: "acl"})
			},
			wantTopics: []string{"plant/m1/cmd", "plant/m2/cmd"},
			wantFailed: map[int]string{0: "command rejected: acl"},
			permanent:  map[int]bool{0: true},
			counts:     map[string]float64{resultAccepted: 1, resultRejected: 1},
		},
		{
			name: "a retryable failure holds back the key",
			batch: []sinks.Record{
				rec("r", "m1", "plant/m1/a", "1", at), rec("r", "m2", "plant/m2/a", "1", at),
				rec("r", "m1", "plant/m1/b", "2", at), rec("r", "m2", "plant/m2/b", "2", at),
			},
			answer:     func(c command.Command) error { return errorIf(c.Topic == "plant/m1/a", busy) },
			wantTopics: []string{"plant/m1/a", "plant/m2/a", "plant/m2/b"},
			wantFailed: map[int]string{0: "store busy", 2: "store busy"},
			counts:     map[string]float64{resultAccepted: 2, resultRetried: 1},
		},
		{
			name:       "no topic",
			batch:      []sinks.Record{rec("r", "m1", "", "1", at)},
			wantFailed: map[int]string{0: "no topic"},
			permanent:  map[int]bool{0: true},
			counts:     map[string]float64{resultRejected: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := &submitter{answer: tt.answer}
			m, _ := NewMetrics(nil)
			s, err := NewRuleSink(tt.cfg, sub, Options{Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Write(context.Background(), tt.batch)
			var topics []string
			for _, c := range sub.cmds {
				topics = append(topics, c.Topic)
				if c.Source != "rule" || !strings.HasPrefix(c.Principal, "rule:") || c.QoS != 1 || !strings.HasPrefix(c.ID, "rule-") {
					t.Errorf("command %+v", c)
				}
			}
			if strings.Join(topics, " ") != strings.Join(tt.wantTopics, " ") {
				t.Errorf("submitted %v, want %v", topics, tt.wantTopics)
			}
			failed := map[int]error{}
			var be *sinks.BatchError
			switch {
			case err == nil:
			case errors.As(err, &be):
				for _, f := range be.Failed {
					failed[f.Index] = f.Err
				}
			default:
				failed[0] = err
			}
			if len(failed) != len(tt.wantFailed) {
				t.Fatalf("Write = %v, want failures %v", err, tt.wantFailed)
			}
			for i, want := range tt.wantFailed {
				if failed[i] == nil || !strings.Contains(failed[i].Error(), want) || sinks.IsPermanent(failed[i]) != tt.permanent[i] {
					t.Errorf("record %d: %v, want %q (permanent %v)", i, failed[i], want, tt.permanent[i])
				}
			}
			for result, want := range tt.counts {
				if v := testutil.ToFloat64(m.commands.WithLabelValues(result)); v != want {
					t.Errorf("%s = %v, want %v", result, v, want)
				}
			}
		})
	}
}

func errorIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// TestRuleCommandID: a record written twice is one command; another
// message, rule or target is another.
func TestRuleCommandID(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	base := rec("r", "m1", "plant/m1/cmd", "1", at)
	id := ruleCommandID(&base, "plant/m1/cmd")
	if again := ruleCommandID(&base, "plant/m1/cmd"); again != id {
		t.Fatalf("the same record got ids %s and %s", id, again)
	}
	for name, r := range map[string]sinks.Record{
		"later message": rec("r", "m1", "plant/m1/cmd", "1", at.Add(time.Nanosecond)),
		"another rule":  rec("r2", "m1", "plant/m1/cmd", "1", at),
		"another value": rec("r", "m1", "plant/m1/cmd", "2", at),
		"another client": func() sinks.Record {
			r := base
			r.Source.ClientID = "m9"
			return r
		}(),
	} {
		if other := ruleCommandID(&r, "plant/m1/cmd"); other == id {
			t.Errorf("%s: same id %s", name, id)
		}
	}
	if ruleCommandID(&base, "plant/m2/cmd") == id {
		t.Error("another target topic: same id")
	}
	noTime := rec("r", "m1", "t", "1", time.Time{})
	if ruleCommandID(&noTime, "t") == ruleCommandID(&noTime, "t") {
		t.Error("records without arrival time must not share an id")
	}
}

func TestRuleSinkConfigAndClose(t *testing.T) {
	q := 3
	if _, err := NewRuleSink(RuleSinkConfig{Topic: "a/#", QoS: &q, TTL: -1}, &submitter{}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "topic:") || !strings.Contains(err.Error(), "qos:") || !strings.Contains(err.Error(), "ttl:") {
		t.Fatalf("NewRuleSink = %v, want topic, qos and ttl errors", err)
	}
	if _, err := NewRuleSink(RuleSinkConfig{}, nil, Options{}); err == nil {
		t.Fatal("no submitter accepted")
	}
	s, err := NewRuleSink(DefaultRuleSinkConfig(), &submitter{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []sinks.Record{rec("r", "m", "t", "1", time.Now())}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}
