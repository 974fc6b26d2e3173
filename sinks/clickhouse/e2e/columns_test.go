package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestMQTTColumnsToClickHouse publishes QoS 1 messages through the real
// binary with a rule whose target maps columns to expressions (no
// transform) and reads the rows back: each mapped column holds its
// expression's value, the columns the rule leaves out are NULL or their
// DEFAULT.
func TestMQTTColumnsToClickHouse(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	ch := chtest.Start(t, chtest.Options{})
	db := ch.Database(t)
	table := db + ".telemetry"
	s := e2etest.Start(t, bin, sluiceConfig(sinkSettings{chAddr: ch.Addr(), database: db, dataDir: filepath.Join(t.TempDir(), "data"),
		columns: `{ts: received_at, device: clientid, site: site, line: line, temperature: payload.t, rpm: 'int(payload.n) * 10', state: 'upper(payload.s ?? "idle")'}`}))

	c := e2etest.ConnectV3(t, s.MQTTAddr, "press-9")
	const n = 50
	for i := range n {
		msg := fmt.Sprintf(`{"t": %d.5, "n": %d, "s": "run"}`, i, i)
		if i%10 == 0 {
			msg = fmt.Sprintf(`{"t": %d.5, "n": %d}`, i, i)
		}
		if tok := c.Publish("plant/lyon/line/4/telemetry", 1, false, msg); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			t.Fatalf("publishing message %d: %v", i, tok.Error())
		}
	}
	waitRows(t, ch, table, n, 2*time.Minute)
	s.Drained(ruleName, sinkName, n, time.Minute)
	got := query(t, ch, `SELECT count(), uniqExact(rpm), sum(rpm), countIf(state = 'RUN'), countIf(state = 'IDLE'),
		countIf(temperature != rpm / 10 + 0.5), countIf(site != 'lyon' OR line != '4' OR device != 'press-9'),
		countIf(pressure IS NOT NULL), countIf(inserted_at < now() - 3600), countIf(ts < now() - 3600 OR ts > now() + 60)
		FROM `+table)
	if want := fmt.Sprintf("%d\t%d\t%d\t45\t5\t0\t0\t0\t0\t0", n, n, 10*n*(n-1)/2); got != want {
		t.Fatalf("rows: got %q, want %q (count, distinct rpm, sum rpm, RUN, IDLE, bad temperature, bad site/line/device, pressure set, inserted_at unset, bad ts)", got, want)
	}
	s.Stop()
}

// TestColumnsMisfitRefusedAtStart maps a string expression to an integer
// column: `sluice run` refuses to start, naming the rule, the target's
// column and both types, before anything listens.
func TestColumnsMisfitRefusedAtStart(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	ch := chtest.Start(t, chtest.Options{})
	db := ch.Database(t)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	body := sluiceConfig(sinkSettings{chAddr: ch.Addr(), database: db, dataDir: filepath.Join(t.TempDir(), "data"),
		columns: `{ts: received_at, device: clientid, rpm: clientid}`})
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "-c", cfg)
	cmd.Env = e2etest.CleanEnv()
	out, err := cmd.CombinedOutput()
	for _, want := range []string{`rule \"` + ruleName + `\" to[0].columns.rpm`, "cannot hold clientid"} {
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("sluice run: %v, want an exit naming %s; output:\n%s", err, want, out)
		}
	}
}
