package clickhouse

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/sinks/sinktest"
)

// TestContract runs the contract every sink passes against a real
// ClickHouse server: each record becomes a row of (key, value) through
// the $key and $value mappings, in a TinyLog table, which keeps rows in
// insertion order. The outage is a killed server restarted on the same
// data, or a hung one (SIGSTOP, then SIGCONT): writes must fail by their
// deadline, never succeed.
func TestContract(t *testing.T) {
	for _, outage := range []string{"killed", "hung"} {
		t.Run(outage, func(t *testing.T) {
			sinktest.Run(t, sinktest.Harness{New: func(t *testing.T) *sinktest.Peer { return contractPeer(t, outage) }})
		})
	}
}

func contractPeer(t *testing.T, outage string) *sinktest.Peer {
	srv := chtest.Start(t, chtest.Options{})
	db, name := makeTable(t, srv, "(key String, value String) ENGINE = TinyLog")
	s := newSink(t, srv, Config{
		Database: db, Table: name,
		Columns:     map[string]string{"key": "$key", "value": "$value"},
		DialTimeout: time.Second,
	})
	p := &sinktest.Peer{
		Sink: s,
		Read: func(ctx context.Context, n int) ([]sinktest.Message, error) {
			return readKV(ctx, srv, db+"."+name, n)
		},
	}
	check := func(t *testing.T, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	switch outage {
	case "killed":
		p.Down = func(t *testing.T) { srv.Stop() }
		p.Up = func(t *testing.T) { check(t, srv.Restart()) }
	case "hung":
		p.Down = func(t *testing.T) { check(t, srv.Pause()) }
		p.Up = func(t *testing.T) { check(t, srv.Resume()) }
	}
	return p
}

// readKV polls the table until it holds at least n rows.
func readKV(ctx context.Context, srv *chtest.Server, table string, n int) ([]sinktest.Message, error) {
	for {
		out, err := srv.Query(ctx, "SELECT hex(key), hex(value) FROM "+table+" FORMAT TSV")
		var msgs []sinktest.Message
		if err == nil {
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if line == "" {
					continue
				}
				k, v, _ := strings.Cut(line, "\t")
				kb, err1 := hex.DecodeString(k)
				vb, err2 := hex.DecodeString(v)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("decoding row %q", line)
				}
				msgs = append(msgs, sinktest.Message{Key: kb, Value: vb})
			}
			if len(msgs) >= n {
				return msgs, nil
			}
		}
		select {
		case <-ctx.Done():
			return msgs, fmt.Errorf("%d rows of %d (last error %v): %w", len(msgs), n, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
