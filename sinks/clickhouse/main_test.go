package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/sinks"
)

// shared is one server for the tests that do not stop or pause it, each
// test with its own database. It starts on first use (fuzz workers and
// unit tests need none) and stops when the tests end.
var (
	sharedOnce sync.Once
	shared     *chtest.Server
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// server returns the shared server, skipping t (failing it under CI=true)
// when there is none.
func server(t testing.TB) *chtest.Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = chtest.New(chtest.Options{}) })
	if errors.Is(sharedErr, chtest.ErrNoServer) {
		chtest.Missing(t, sharedErr)
	}
	if sharedErr != nil {
		t.Fatalf("starting clickhouse: %v", sharedErr)
	}
	return shared
}

// newSink builds a sink for srv with cfg's table and columns, connects
// it, and closes it when t ends.
func newSink(t testing.TB, srv *chtest.Server, cfg Config) *Sink {
	t.Helper()
	cfg.Addresses = []string{srv.Addr()}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return s
}

// rec builds a record with a JSON value.
func rec(value string) sinks.Record {
	return sinks.Record{
		Rule:  "r",
		Key:   []byte("dev-1"),
		Value: []byte(value),
		Source: sinks.Source{
			Topic: "plant/berlin/line/3/telemetry", ClientID: "dev-1", Username: "u", QoS: 1,
			ReceivedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		},
	}
}

func recs(values ...string) []sinks.Record {
	out := make([]sinks.Record, len(values))
	for i, v := range values {
		out[i] = rec(v)
	}
	return out
}

func write(t testing.TB, s *Sink, batch []sinks.Record) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Write(ctx, batch)
}

// failures returns the index → error of a Write's failed records.
func failures(t testing.TB, err error, n int) map[int]error {
	t.Helper()
	out := map[int]error{}
	if err == nil {
		return out
	}
	var be *sinks.BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failed {
			out[f.Index] = f.Err
		}
		return out
	}
	for i := 0; i < n; i++ {
		out[i] = err
	}
	return out
}

// rows reads query's result as TSV lines.
func rows(t testing.TB, srv *chtest.Server, query string) []string {
	t.Helper()
	out := srv.Exec(t, query+" FORMAT TSV")
	out = strings.TrimSuffix(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func makeTable(t testing.TB, srv *chtest.Server, ddl string) (db, name string) {
	t.Helper()
	db = srv.Database(t)
	name = "t"
	srv.Exec(t, fmt.Sprintf("CREATE TABLE %s.%s %s", db, name, ddl))
	return db, name
}
