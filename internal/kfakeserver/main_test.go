package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "everything", args: []string{"-port", "19092", "-brokers", "3", "-data-dir", "/tmp/x", "-sync", "-topics", "a, b", "-partitions", "6", "-auto-create", "-log-level", "debug"}},
		{name: "negative port", args: []string{"-port", "-1"}, wantErr: "-port: -1 is not a port"},
		{name: "brokers past the last port", args: []string{"-port", "65535", "-brokers", "2"}, wantErr: "-brokers: 2 brokers do not fit"},
		{name: "no brokers", args: []string{"-brokers", "0"}, wantErr: "-brokers: 0 brokers"},
		{name: "zero partitions", args: []string{"-partitions", "0"}, wantErr: "-partitions: 0, want at least 1"},
		{name: "sync without data dir", args: []string{"-sync"}, wantErr: "-sync: needs -data-dir"},
		{name: "unknown log level", args: []string{"-log-level", "loud"}, wantErr: `-log-level: unknown level "loud"`},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "every problem at once", args: []string{"-partitions", "0", "-sync"}, wantErr: "-partitions: 0, want at least 1\n-sync: needs -data-dir"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// server is one run of the command in-process.
type server struct {
	t      *testing.T
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// start runs the command with args and waits for its "listening" line.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, args, pw, io.Discard)
		pw.Close()
		s.done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			cancel()
			t.Fatalf("kfakeserver %q exited without listening: %v", args, <-s.done)
		}
		addr, found := strings.CutPrefix(line, "listening ")
		if !found {
			cancel()
			t.Fatalf("first line %q, want \"listening ADDR\"", line)
		}
		s.addr = addr
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("kfakeserver did not print its address within 30s")
	}
	t.Cleanup(s.stop)
	return s
}

// stop cancels the run and waits for it to return. Safe to call twice.
func (s *server) stop() {
	s.cancel()
	if s.done == nil {
		return
	}
	if err := <-s.done; err != nil {
		s.t.Errorf("kfakeserver run: %v", err)
	}
	s.done = nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func produce(t *testing.T, addr, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// consumeAll reads topic from the start until it has been quiet for a
// while, and returns the values.
func consumeAll(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	quiet := 0
	for deadline := time.Now().Add(30 * time.Second); quiet < 5 && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		recs := fs.Records()
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		if len(recs) == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return got
}

// TestRestart produces, stops the server, starts it again on the same
// port and reads back: with -data-dir the records are still there,
// without it the cluster comes back empty.
func TestRestart(t *testing.T) {
	tests := []struct {
		name    string
		persist bool
		want    int
	}{
		{name: "data dir keeps the records", persist: true, want: 50},
		{name: "in memory starts empty", persist: false, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"-port", fmt.Sprint(freePort(t)), "-topics", "events", "-partitions", "2"}
			if tt.persist {
				args = append(args, "-data-dir", t.TempDir())
			}
			s := start(t, args...)
			produce(t, s.addr, "events", 50)
			s.stop()
			s2 := start(t, args...)
			if s2.addr != s.addr {
				t.Fatalf("restarted on %s, want %s", s2.addr, s.addr)
			}
			got := consumeAll(t, s2.addr, "events")
			if len(got) != tt.want {
				t.Fatalf("read %d records after the restart, want %d", len(got), tt.want)
			}
			for i, v := range got {
				if v != fmt.Sprintf("v%d", i) { // one key: one partition, in order
					t.Fatalf("record %d = %q, want v%d", i, v, i)
				}
			}
		})
	}
}
