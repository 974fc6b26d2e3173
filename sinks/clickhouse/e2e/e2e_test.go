package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/internal/e2etest"
)

// The rule and sink under test, as in sinks/clickhouse/README.md.
const ruleName, sinkName = "line-telemetry", "ch"

// readmeTransform is the README's example transform: site and line from
// the topic, the device from the client id, measurements from the JSON
// payload, the receive time as ts.
const readmeTransform = `{"ts": received_at, "site": site, "line": line, "device": clientid, ` +
	`"temperature": payload.temp, "rpm": payload.rpm, "state": payload.state ?? "unknown"}`

// sinkSettings are the parts of a test's config that vary.
type sinkSettings struct {
	chAddr, database, dataDir string
	transform                 string        // "" is readmeTransform
	columns                   string        // a YAML flow mapping: the target's columns instead of the transform
	writeTimeout              time.Duration // 0 is 30s
}

// sluiceConfig is a config for one test: JSON logs, MQTT and admin
// listeners on free ports, the spool in dataDir, a ClickHouse sink that
// creates database.telemetry from the shipped telemetry_wide schema, and
// the README's rule.
func sluiceConfig(s sinkSettings) string {
	if s.transform == "" {
		s.transform = readmeTransform
	}
	if s.writeTimeout == 0 {
		s.writeTimeout = 30 * time.Second
	}
	body := "    transform: '" + s.transform + "'\n    to:\n      - sink: " + sinkName + "\n"
	if s.columns != "" {
		body = "    to:\n      - sink: " + sinkName + "\n        columns: " + s.columns + "\n"
	}
	return `
log: {level: info, format: json}
broker:
  listeners: [{name: e2e, address: "127.0.0.1:0", allow_anonymous: true}]
ingest:
  durability: spool
  data_dir: ` + s.dataDir + `
  retry: {initial: 50ms, max: 1s}
admin: {address: "127.0.0.1:0"}
sinks:
  ` + sinkName + `:
    type: clickhouse
    clickhouse:
      addresses: ["` + s.chAddr + `"]
      database: ` + s.database + `
      table: telemetry
      create_table: true
      ddl: telemetry_wide
      dial_timeout: 5s
      write_timeout: ` + s.writeTimeout.String() + `
      batch: {linger: 200ms}
rules:
  - name: ` + ruleName + `
    topics: ["plant/+/line/+/telemetry"]
    let: {site: level(1), line: level(3)}
` + body
}

// published describes one MQTT publisher of a test.
type published struct {
	client, site, line string
	n                  int
}

func (p published) topic() string { return "plant/" + p.site + "/line/" + p.line + "/telemetry" }

// query runs sql against ch and returns its trimmed TSV answer, failing t
// on error.
func query(t testing.TB, ch *chtest.Server, sql string) string {
	t.Helper()
	return strings.TrimSpace(ch.Exec(t, sql+" FORMAT TSV"))
}

// waitRows polls SELECT count() FROM table until it reaches want and
// returns the count, failing after timeout. It only waits: the caller
// checks the count, so more rows than want are reported, not hidden.
func waitRows(t testing.TB, ch *chtest.Server, table string, want int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := ch.Query(ctx, "SELECT count() FROM "+table+" FORMAT TSV")
		cancel()
		got = strings.TrimSpace(out)
		var n int
		if err == nil && func() bool { _, e := fmt.Sscan(got, &n); return e == nil }() && n >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q rows after %v, want %d (err %v)", table, got, timeout, want, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dlqList runs `sluice dlq list -admin URL` and returns its output.
func dlqList(t testing.TB, bin, admin string) string {
	t.Helper()
	cmd := exec.Command(bin, "dlq", "list", "-admin", admin)
	cmd.Env = e2etest.CleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice dlq list: %v\n%s", err, stderr.Bytes())
	}
	return string(out)
}

// TestMQTTToClickHouse publishes QoS 1 messages from four MQTT clients
// and one bad message (a string where the table has a Float32) through
// the real binary's README rule into a ClickHouse table the sink creates
// from the shipped schema. Every good row must be in the table exactly
// once with the values the transform made, the bad row alone in the
// dead-letter store with the column named, and the accounting balanced.
func TestMQTTToClickHouse(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	ch := chtest.Start(t, chtest.Options{})
	db := ch.Database(t)
	table := db + ".telemetry"
	s := e2etest.Start(t, bin, sluiceConfig(sinkSettings{chAddr: ch.Addr(), database: db, dataDir: filepath.Join(t.TempDir(), "data")}))

	pubs := []published{
		{client: "press-0", site: "berlin", line: "1", n: 250},
		{client: "press-1", site: "berlin", line: "2", n: 250},
		{client: "press-2", site: "paris", line: "1", n: 250},
		{client: "press-3", site: "paris", line: "7", n: 250},
	}
	good := 0
	var wg sync.WaitGroup
	errs := make(chan error, len(pubs))
	for _, p := range pubs {
		good += p.n
		c := e2etest.ConnectV3(t, s.MQTTAddr, p.client)
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &e2etest.Streamer{Client: c, Topic: p.topic(), Payload: payload, Window: 16, Limit: p.n}
			st.Run(nil)
			acked, failed, err := st.Result()
			if err != nil || failed > 0 || len(acked) != p.n {
				errs <- fmt.Errorf("%s: %d acked, %d failed: %v", p.client, len(acked), failed, err)
			}
		}()
	}
	bad := e2etest.ConnectV3(t, s.MQTTAddr, "press-bad")
	const badTopic = "plant/berlin/line/3/telemetry"
	if tok := bad.Publish(badTopic, 1, false, `{"rpm":7,"state":"run","temp":"hot"}`); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("publishing the bad message: %v", tok.Error())
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	waitRows(t, ch, table, good, 2*time.Minute)
	st := s.Drained(ruleName, sinkName, int64(good+1), time.Minute)
	// The batch linger has passed long since: a stray or duplicate row
	// would be in by now.
	if got := query(t, ch, "SELECT count() FROM "+table); got != fmt.Sprint(good) {
		t.Errorf("table holds %s rows, want %d (exactly once without faults, the bad row left out)", got, good)
	}
	for _, p := range pubs {
		t.Run(p.client, func(t *testing.T) {
			// Per device: rows, distinct seq (rpm), their range, rows whose
			// temperature is not the one published with that seq, other
			// sites, lines or states, and rows stamped outside the test.
			got := query(t, ch, fmt.Sprintf(`SELECT count(), uniqExact(rpm), min(rpm), max(rpm),
				countIf(temperature != toFloat32(20 + rpm %% 10) + 0.5),
				countIf(site != '%s' OR line != '%s' OR state != 'run'),
				countIf(ts < now() - 3600 OR ts > now() + 60)
				FROM %s WHERE device = '%s'`, p.site, p.line, table, p.client))
			want := fmt.Sprintf("%d\t%d\t0\t%d\t0\t0\t0", p.n, p.n, p.n-1)
			if got != want {
				t.Errorf("rows of %s: got %q, want %q (count, distinct rpm, min, max, bad temperature, bad site/line/state, bad ts)", p.client, got, want)
			}
		})
	}
	if got := query(t, ch, "SELECT count() FROM "+table+" WHERE device = 'press-bad'"); got != "0" {
		t.Errorf("the bad message left %s rows, want 0", got)
	}
	if got := query(t, ch, "SELECT countIf(pressure IS NOT NULL OR vibration IS NOT NULL OR power_kw IS NOT NULL) FROM "+table); got != "0" {
		t.Errorf("%s rows have a measurement nobody published, want 0", got)
	}

	e2etest.CheckBalanced(t, st, ruleName, sinkName, 1, true)
	if f := st.Flow(ruleName, sinkName); f.Received != int64(good+1) || f.Delivered != int64(good) {
		t.Errorf("flow received %d, delivered %d; want %d, %d", f.Received, f.Delivered, good+1, good)
	}

	out := dlqList(t, bin, s.AdminURL)
	t.Logf("sluice dlq list:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[1] != "1 entries, 1 pending" {
		t.Fatalf("sluice dlq list printed\n%s\nwant one entry and \"1 entries, 1 pending\"", out)
	}
	for _, want := range []string{"pending", ruleName + "->" + sinkName, badTopic, "press-bad", "column temperature", `"hot"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("dead letter %q does not contain %q", lines[0], want)
		}
	}
	s.Stop()
}
