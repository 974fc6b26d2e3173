package sinktest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/sinks"
)

// memSink writes to an in-memory peer; fault makes it misbehave in one
// way, which the suite must catch.
type memSink struct {
	peer   *memPeer
	fault  string
	mu     sync.Mutex
	closed int
}

type memPeer struct {
	mu   sync.Mutex
	msgs []Message
	down bool
}

func (s *memSink) Write(ctx context.Context, batch []sinks.Record) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed > 0 && s.fault != "write after close" {
		return errors.New("closed")
	}
	if err := ctx.Err(); err != nil && s.fault != "ignores context" {
		return err
	}
	p := s.peer
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		switch s.fault {
		case "success during outage":
			return nil
		case "permanent during outage":
			return sinks.Permanent(errors.New("peer down"))
		}
		return errors.New("peer down")
	}
	for i, r := range batch {
		v := append([]byte(nil), r.Value...)
		k := append([]byte(nil), r.Key...)
		switch {
		case s.fault == "drops" && i == 1:
			continue
		case s.fault == "wrong key" && i == 2:
			k = []byte("other")
		case s.fault == "truncates large" && len(v) > 1000:
			v = v[:1000]
		}
		p.msgs = append(p.msgs, Message{Key: k, Value: v})
		if s.fault == "duplicates" && i == 3 {
			p.msgs = append(p.msgs, Message{Key: k, Value: v})
		}
	}
	if s.fault == "reorders" && len(p.msgs) >= 6 {
		p.msgs[0], p.msgs[3] = p.msgs[3], p.msgs[0] // records 0 and 3 share a key
	}
	return nil
}

func (s *memSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	if s.closed > 1 && s.fault == "close twice fails" {
		return errors.New("already closed")
	}
	return nil
}

func memHarness(fault string) Harness {
	return Harness{New: func(t *testing.T) *Peer {
		p := &memPeer{}
		return &Peer{
			Sink: &memSink{peer: p, fault: fault},
			Read: func(ctx context.Context, n int) ([]Message, error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				out := append([]Message(nil), p.msgs...)
				if len(out) < n {
					return out, errors.New("not enough messages")
				}
				return out, nil
			},
			Down: func(*testing.T) { p.mu.Lock(); p.down = true; p.mu.Unlock() },
			Up:   func(*testing.T) { p.mu.Lock(); p.down = false; p.mu.Unlock() },
		}
	}}
}

func TestSuitePassesCorrectSink(t *testing.T) {
	Run(t, memHarness(""))
}

// TestSuiteCatchesFaults runs the suite in a child process against a
// sink with one fault each and expects the named check to fail.
func TestSuiteCatchesFaults(t *testing.T) {
	if fault := os.Getenv("SINKTEST_FAULT"); fault != "" {
		Run(t, memHarness(fault))
		return
	}
	faults := map[string]string{
		"drops":                   "round_trip",
		"duplicates":              "round_trip",
		"wrong key":               "round_trip",
		"reorders":                "round_trip",
		"truncates large":         "large_value",
		"close twice fails":       "close_twice",
		"write after close":       "close_twice",
		"ignores context":         "cancelled_context",
		"success during outage":   "peer_outage",
		"permanent during outage": "peer_outage",
	}
	for fault, check := range faults {
		t.Run(fault, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteCatchesFaults$", "-test.v")
			cmd.Env = append(os.Environ(), "SINKTEST_FAULT="+fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a sink that %s:\n%s", fault, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestSuiteCatchesFaults/"+check) {
				t.Fatalf("the check %s did not fail for a sink that %s:\n%s", check, fault, out)
			}
		})
	}
}
