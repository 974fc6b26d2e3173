package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaOutage stops Kafka mid-stream while MQTT publishers go on,
// restarts it on the same port and data dir, and checks that every
// message Sluice acknowledged to MQTT is in Kafka afterwards (duplicates
// allowed and counted), that each key's first deliveries are in publish
// order, and that the accounting balances with nothing buffered.
//
// kfakeserver persists its log with -data-dir and writes a record to its
// segment file before answering the produce request, so records Kafka
// acknowledged before the outage survive even SIGKILL (the page cache
// outlives the process). The test can therefore demand every record
// acknowledged to MQTT, before, during and after the outage: the ones
// Kafka had acknowledged must come back from the data dir, the rest must
// come from Sluice's spool.
func TestKafkaOutage(t *testing.T) {
	tests := []struct {
		name string
		sig  syscall.Signal
	}{
		{name: "killed", sig: syscall.SIGKILL},
		{name: "stopped", sig: syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { outage(t, tt.sig) })
	}
}

func outage(t *testing.T, sig syscall.Signal) {
	sluiceBin, kfakeBin := binaries(t)
	k := startKafka(t, kfakeBin, "-topics", kafkaTopics, "-partitions", "3", "-data-dir", t.TempDir())
	s := e2etest.Start(t, sluiceBin, sluiceConfig(k.Addr, filepath.Join(t.TempDir(), "data"), jsonTransform))

	pubs := []published{
		{client: "press-0", site: "berlin", line: "1"},
		{client: "press-1", site: "berlin", line: "2"},
		{client: "press-2", site: "paris", line: "1"},
		{client: "press-3", site: "paris", line: "7"},
	}
	streamers := make([]*e2etest.Streamer, len(pubs))
	for i, p := range pubs {
		streamers[i] = &e2etest.Streamer{Client: e2etest.ConnectV3(t, s.MQTTAddr, p.client), Topic: p.topic(), Payload: payload, Window: 8, Pause: time.Millisecond}
	}
	stopPublishers := e2etest.RunPublishers(t, streamers).Stop
	acked := func() int {
		n := 0
		for _, st := range streamers {
			n += st.AckedCount()
		}
		return n
	}
	waitAcked := func(what string, n int) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); acked() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %d of %d publishes acknowledged", what, acked(), n)
			}
		}
	}

	// Flowing: some records reach Kafka.
	before := s.WaitIngest("records delivered before the outage", 2*time.Minute, func(st e2etest.IngestStats) bool {
		return st.Flow(ruleName, sinkName).Delivered >= 500
	}).Flow(ruleName, sinkName)
	k.stop(sig)
	downAt := acked()

	// Kafka down: publishers are still acknowledged (the spool holds their
	// records), the sink fails and retries, records pile up.
	waitAcked("publishes acknowledged while Kafka is down", downAt+1000)
	during := s.WaitIngest("the sink to retry with records buffered", 2*time.Minute, func(st e2etest.IngestStats) bool {
		f := st.Flow(ruleName, sinkName)
		return f.Retried > before.Retried && f.Buffered >= 500
	}).Flow(ruleName, sinkName)
	k.start()
	upAt := acked()

	// Kafka back: the backlog drains while publishing goes on.
	waitAcked("publishes acknowledged after the restart", upAt+1000)
	stopPublishers()

	want := map[string][]int{}
	total := 0
	for i, st := range streamers {
		seqs, failed, err := st.Result()
		if failed > 0 {
			t.Errorf("%s: %d publishes not acknowledged: %v", pubs[i].client, failed, err)
		}
		want[pubs[i].client] = seqs
		total += len(seqs)
	}
	final := s.Drained(ruleName, sinkName, int64(total), 2*time.Minute)
	e2etest.CheckBalanced(t, final, ruleName, sinkName, 0, true)
	f := final.Flow(ruleName, sinkName)
	if f.Received != int64(total) {
		t.Errorf("flow received %d records, want %d (one per acknowledged publish)", f.Received, total)
	}

	recs := readAll(t, k.Addr, total, 2*time.Second, 2*time.Minute, `^telemetry\.`)
	dups := checkDelivered(t, recs, want)
	t.Logf("acknowledged to MQTT: %d (%d before the outage, %d during, %d after); "+
		"flow before the outage %+v, during %+v, final %+v; Kafka records %d, duplicates %d",
		total, downAt, upAt-downAt, total-upAt, before, during, f, len(recs), dups)
	s.Stop()
}

// checkDelivered checks that every (key, seq) in want is among recs, that
// each key stays in one partition and that its first deliveries come in
// publish order. It returns the number of duplicate records.
func checkDelivered(t *testing.T, recs []*kgo.Record, want map[string][]int) int {
	t.Helper()
	byKey := map[string]map[int]int{} // key → seq → deliveries
	firsts := map[string][]int{}      // key → seqs in order of first delivery
	partitions := map[string]int32{}
	dups := 0
	for _, r := range recs {
		key := string(r.Key)
		var v struct {
			Device string `json:"device"`
			Seq    int    `json:"seq"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Device != key {
			t.Errorf("record %s/%d@%d: value %s (%v) does not belong to key %q", r.Topic, r.Partition, r.Offset, r.Value, err, key)
			continue
		}
		if p, ok := partitions[key]; ok && p != r.Partition {
			t.Errorf("key %q in partitions %d and %d", key, p, r.Partition)
		}
		partitions[key] = r.Partition
		if byKey[key] == nil {
			byKey[key] = map[int]int{}
		}
		byKey[key][v.Seq]++
		if byKey[key][v.Seq] > 1 {
			dups++
			continue
		}
		firsts[key] = append(firsts[key], v.Seq)
	}
	for key, seqs := range want {
		var missing []int
		for _, seq := range seqs {
			if byKey[key][seq] == 0 {
				missing = append(missing, seq)
			}
		}
		if len(missing) > 0 {
			t.Errorf("key %q: %d of %d acknowledged messages missing from Kafka, first %v", key, len(missing), len(seqs), head(missing, 10))
		}
		f := firsts[key]
		for i := 1; i < len(f); i++ {
			if f[i] <= f[i-1] {
				t.Errorf("key %q: seq %d first delivered after seq %d", key, f[i], f[i-1])
				break
			}
		}
	}
	for key := range byKey {
		if _, ok := want[key]; !ok {
			t.Errorf("records with unexpected key %q", key)
		}
	}
	return dups
}

func head(s []int, n int) string {
	if len(s) > n {
		return fmt.Sprint(s[:n]) + "..."
	}
	return fmt.Sprint(s)
}
