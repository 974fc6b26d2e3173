package spool

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// openT opens a spool in dir and closes it at the end of the test (a second
// Close by the test itself is harmless).
func openT(t testing.TB, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// payload is the deterministic content of the i-th test record.
func payload(i, size int) []byte {
	p := fmt.Appendf(nil, "record-%08d|", i)
	for len(p) < size {
		p = append(p, byte('a'+i%26))
	}
	return p[:max(size, 0)]
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// appendAll appends every record synchronously and returns their offsets.
func appendAll(t testing.TB, s *Spool, recs [][]byte) []uint64 {
	t.Helper()
	offs := make([]uint64, len(recs))
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	for i, r := range recs {
		wg.Add(1)
		err := s.Append(ctxT(t), r, func(off uint64, err error) {
			offs[i] = off
			if err != nil {
				errs <- err
			}
			wg.Done()
		})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("commit: %v", err)
	}
	return offs
}

// readN reads n records from c, failing the test on error.
func readN(t testing.TB, c *Cursor, n int) []Record {
	t.Helper()
	ctx := ctxT(t)
	out := make([]Record, 0, n)
	for range n {
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		out = append(out, r)
	}
	return out
}

// expectNoRecord checks that Next has nothing to deliver right now.
func expectNoRecord(t testing.TB, c *Cursor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if r, err := c.Next(ctx); err == nil {
		t.Fatalf("Next delivered offset %d, want nothing", r.Offset)
	}
}

// checkRecords verifies that recs are offsets from..from+len-1 carrying the
// payloads want[from-wantBase...].
func checkRecords(t testing.TB, recs []Record, from uint64, want func(off uint64) []byte) {
	t.Helper()
	for i, r := range recs {
		if r.Offset != from+uint64(i) {
			t.Fatalf("record %d: offset %d, want %d", i, r.Offset, from+uint64(i))
		}
		if w := want(r.Offset); !bytes.Equal(r.Data, w) {
			t.Fatalf("offset %d: data %q, want %q", r.Offset, trunc(r.Data), trunc(w))
		}
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// logBuffer is a concurrency-safe slog sink for asserting on log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

func newLogger(lb *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
