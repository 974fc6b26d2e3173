package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestClickHouseOutage interrupts ClickHouse mid-stream while MQTT
// publishers go on, then brings it back, and checks that every message
// Sluice acknowledged to MQTT is in the table afterwards (duplicates
// allowed: delivery is at least once, and counted), and that the
// accounting balances with nothing buffered or dead-lettered.
//
// "paused" stops the server with SIGSTOP, a hung server: connections stay
// open and nothing answers, so only write_timeout ends an insert.
// "killed" kills it (SIGKILL) and restarts it on the same ports and data.
func TestClickHouseOutage(t *testing.T) {
	tests := []struct {
		name         string
		down, resume func(*chtest.Server) error
	}{
		{name: "paused", down: (*chtest.Server).Pause, resume: (*chtest.Server).Resume},
		{name: "killed", down: func(s *chtest.Server) error { s.Stop(); return nil }, resume: (*chtest.Server).Restart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { outage(t, tt.down, tt.resume) })
	}
}

func outage(t *testing.T, down, resume func(*chtest.Server) error) {
	bin := e2etest.BuildSluice(t)
	ch := chtest.Start(t, chtest.Options{})
	db := ch.Database(t)
	table := db + ".telemetry"
	const writeTimeout = 3 * time.Second
	s := e2etest.Start(t, bin, sluiceConfig(sinkSettings{chAddr: ch.Addr(), database: db,
		dataDir: filepath.Join(t.TempDir(), "data"), writeTimeout: writeTimeout}))

	pubs := []published{
		{client: "press-0", site: "berlin", line: "1"},
		{client: "press-1", site: "paris", line: "7"},
	}
	streamers := make([]*e2etest.Streamer, len(pubs))
	for i, p := range pubs {
		streamers[i] = &e2etest.Streamer{Client: e2etest.ConnectV3(t, s.MQTTAddr, p.client), Topic: p.topic(), Payload: payload, Window: 8, Pause: 2 * time.Millisecond}
	}
	stopPublishers := e2etest.RunPublishers(t, streamers).Stop

	// Some rows in before the outage, so it hits a sink mid-stream.
	waitRows(t, ch, table, 100, 2*time.Minute)
	if err := down(ch); err != nil {
		t.Fatal(err)
	}
	before := streamers[0].AckedCount()
	// Longer than write_timeout, so an insert is cut off and retried.
	time.Sleep(2 * writeTimeout)
	if during := streamers[0].AckedCount() - before; during == 0 {
		t.Errorf("no publish acknowledged during the outage: the spool should take them")
	}
	if err := resume(ch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	stopPublishers()

	total := 0
	for i, p := range pubs {
		acked, failed, err := streamers[i].Result()
		if failed > 0 || err != nil {
			t.Fatalf("%s: %d publishes not acknowledged: %v", p.client, failed, err)
		}
		pubs[i].n = len(acked)
		total += len(acked)
	}
	st := s.Drained(ruleName, sinkName, int64(total), 3*time.Minute)
	e2etest.CheckBalanced(t, st, ruleName, sinkName, 0, true)
	f := st.Flow(ruleName, sinkName)
	if f.Received != int64(total) {
		t.Errorf("flow received %d, %d were acknowledged", f.Received, total)
	}
	rows := waitRows(t, ch, table, total, time.Minute)
	for _, p := range pubs {
		t.Run(p.client, func(t *testing.T) {
			// Every acknowledged seq 0..n-1 once at least, no other.
			got := query(t, ch, fmt.Sprintf("SELECT uniqExact(rpm), min(rpm), max(rpm) FROM %s WHERE device = '%s'", table, p.client))
			if want := fmt.Sprintf("%d\t0\t%d", p.n, p.n-1); got != want {
				t.Errorf("rows of %s: got %q, want %q (distinct rpm, min, max)", p.client, got, want)
			}
		})
	}
	t.Logf("%d acknowledged, %s rows (%d retried in the flow), sinks %+v", total, rows, f.Retried, st.Sinks)
	s.Stop()
}
