package storebench

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/topic"
)

// Workloads, each run against every store in kinds (README.md has the
// command). Sizes follow the broker: 200-byte QoS 1 payloads, one Save
// per flush carrying whole session records plus the queued messages new
// since the previous flush.
const (
	payloadBytes   = 200
	churnSessions  = 10_000 // (b)
	churnBatch     = 100    // (b) sessions connecting (and leaving) per flush
	churnSubs      = 5      // (b) subscriptions per session
	restoreSubs    = 10     // (c) subscriptions per session
	restoreBatch   = 5_000  // (c) sessions per Save while filling
	retainedTopics = 10_000 // (d)
	retainedBatch  = 1_000  // (d) updates per flush
	retainedRounds = 50     // (d) flushes measured
)

// restoreSessions is (c)'s session count: 100,000, or SLUICE_STOREBENCH_SESSIONS.
func restoreSessions(b *testing.B) int {
	if v := os.Getenv("SLUICE_STOREBENCH_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("SLUICE_STOREBENCH_SESSIONS=%q: want a positive count", v)
		}
		return n
	}
	return 100_000
}

// payload is random, so no store gains from compressing it (pebble
// compresses its tables; a run of zeros would shrink to nothing).
var payload = func() []byte {
	p := make([]byte, payloadBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}()

var epoch = time.Unix(1_700_000_000, 0).UTC()

func benchMsg(t string, i int) *broker.Message {
	return &broker.Message{Topic: t, Payload: payload, QoS: 1, ClientID: "plc-7", Version: 4,
		ReceivedAt: epoch.Add(time.Duration(i) * time.Microsecond)}
}

func subs(id string, n int) []topic.Sub {
	out := make([]topic.Sub, n)
	for i := range out {
		out[i] = topic.Sub{ClientID: id, Filter: fmt.Sprintf("plant/line%d/+/telemetry/#", i), QoS: 1}
	}
	return out
}

// writeBytes is this process's write_bytes from /proc/self/io: bytes it
// caused to be sent to the block layer (counted when the page is dirtied,
// so a file rewritten in place counts each time). Journal writes by the
// kernel are not included. -1 if unavailable.
func writeBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

const mb = 1 << 20

// forKinds runs fn as a sub-benchmark per store, on a fresh directory.
func forKinds(b *testing.B, fn func(b *testing.B, k kind, dir string)) {
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) { fn(b, k, b.TempDir()) })
	}
}

func mustOpen(b *testing.B, k kind, dir string) closer {
	b.Helper()
	s, err := k.open(dir)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func mustSave(b *testing.B, s broker.SessionStore, batch broker.StoreBatch) {
	b.Helper()
	if err := s.Save(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
}

func mustClose(b *testing.B, s closer) {
	b.Helper()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// queueCase is one shape of workload (a).
type queueCase struct {
	sessions int // offline sessions
	perSess  int // messages queued per session, then drained
	perSave  int // messages per session per Save
}

// BenchmarkOfflineQueue is workload (a): 1,000 offline persistent
// sessions receive 100 QoS 1 messages each, perSave messages per session
// per Save (1: flushes kicked back to back by waiting acks, 1,000
// messages each; 25: a 250 ms flush at 100,000 msg/s), then the queues
// drain at the same pace (each Save advances every QueueHead: the store
// deletes what was sent). The one-session case is what the broker's
// earlier durable measurement did (one offline subscriber). MB-written
// counts fill, drain and Close.
func BenchmarkOfflineQueue(b *testing.B) {
	for _, c := range []queueCase{{1000, 100, 1}, {1000, 100, 25}, {1, 100_000, 1000}} {
		b.Run(fmt.Sprintf("sessions=%d/msgs-per-save=%d", c.sessions, c.sessions*c.perSave), func(b *testing.B) {
			forKinds(b, func(b *testing.B, k kind, dir string) {
				var fill, drain time.Duration
				var written, peak int64
				for i := range b.N {
					d := filepath.Join(dir, strconv.Itoa(i))
					f, dr, w, p := offlineQueueRound(b, k, d, c)
					fill, drain, written, peak = fill+f, drain+dr, written+w, max(peak, p)
				}
				msgs := float64(b.N * c.sessions * c.perSess)
				b.ReportMetric(msgs/fill.Seconds(), "fill-msgs/s")
				b.ReportMetric(msgs/drain.Seconds(), "drain-msgs/s")
				b.ReportMetric(float64(written)/mb/float64(b.N), "MB-written/op")
				b.ReportMetric(float64(peak)/mb, "MB-on-disk-full")
			})
		})
	}
}

func offlineQueueRound(b *testing.B, k kind, dir string, c queueCase) (fill, drain time.Duration, written, peak int64) {
	b.StopTimer()
	s := mustOpen(b, k, dir)
	ids := make([]string, c.sessions)
	sess := make([]broker.StoredSession, c.sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("plant-dashboard-%04d", i)
		sess[i] = broker.StoredSession{ClientID: ids[i], Expiry: 3600, OfflineSince: epoch, Subscriptions: subs(ids[i], 1)}
	}
	mustSave(b, s, broker.StoreBatch{Sessions: sess})
	w0 := writeBytes()
	b.StartTimer()
	start := time.Now()
	n := 0
	for seq := 0; seq < c.perSess; seq += c.perSave {
		batch := broker.StoreBatch{Sessions: make([]broker.StoredSession, c.sessions)}
		for i := range ids {
			ss := sess[i]
			for j := seq; j < min(seq+c.perSave, c.perSess); j++ {
				ss.Queued = append(ss.Queued, broker.StoredDelivery{Message: benchMsg("plant/line1/m1/telemetry/temp", n), QoS: 1, Seq: uint64(j)})
				n++
			}
			batch.Sessions[i] = ss
		}
		mustSave(b, s, batch)
	}
	fill = time.Since(start)
	b.StopTimer()
	peak = dirBytes(dir)
	b.StartTimer()
	start = time.Now()
	for head := c.perSave; head < c.perSess+c.perSave; head += c.perSave {
		batch := broker.StoreBatch{Sessions: make([]broker.StoredSession, c.sessions)}
		for i := range ids {
			ss := sess[i]
			ss.QueueHead = uint64(min(head, c.perSess))
			batch.Sessions[i] = ss
		}
		mustSave(b, s, batch)
	}
	drain = time.Since(start)
	b.StopTimer()
	mustClose(b, s)
	written = writeBytes() - w0
	s = mustOpen(b, k, dir)
	st, err := s.Load(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, ss := range st.Sessions {
		if len(ss.Queued) != 0 {
			b.Fatalf("%s: %d messages still queued after the drain", ss.ClientID, len(ss.Queued))
		}
	}
	if len(st.Sessions) != c.sessions {
		b.Fatalf("loaded %d sessions, want %d", len(st.Sessions), c.sessions)
	}
	mustClose(b, s)
	b.StartTimer()
	return fill, drain, written, peak
}

// BenchmarkSessionChurn is workload (b): 10,000 persistent sessions
// (5 subscriptions each) connect and leave; each Save carries the 100
// sessions that connected since the previous one and deletes the 100
// before them.
func BenchmarkSessionChurn(b *testing.B) {
	forKinds(b, func(b *testing.B, k kind, dir string) {
		var took time.Duration
		var written int64
		for i := range b.N {
			b.StopTimer()
			s := mustOpen(b, k, filepath.Join(dir, strconv.Itoa(i)))
			w0 := writeBytes()
			b.StartTimer()
			start := time.Now()
			var prev []string
			for first := 0; first <= churnSessions; first += churnBatch {
				batch := broker.StoreBatch{DeletedSessions: prev}
				prev = nil
				for j := first; j < min(first+churnBatch, churnSessions); j++ {
					id := fmt.Sprintf("hmi-%05d", j)
					batch.Sessions = append(batch.Sessions, broker.StoredSession{ClientID: id, Expiry: 300, Subscriptions: subs(id, churnSubs)})
					prev = append(prev, id)
				}
				mustSave(b, s, batch)
			}
			took += time.Since(start)
			b.StopTimer()
			mustClose(b, s)
			written += writeBytes() - w0
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*churnSessions)/took.Seconds(), "sessions/s")
		b.ReportMetric(float64(written)/mb/float64(b.N), "MB-written/op")
	})
}

// BenchmarkRestore is workload (c): the store holds 100,000 sessions with
// 10 subscriptions each (written in Saves of 5,000, then closed); the
// measure is opening it again and loading everything, as a restart does.
func BenchmarkRestore(b *testing.B) {
	n := restoreSessions(b)
	forKinds(b, func(b *testing.B, k kind, dir string) {
		b.StopTimer()
		s := mustOpen(b, k, dir)
		for first := 0; first < n; first += restoreBatch {
			var batch broker.StoreBatch
			for j := first; j < min(first+restoreBatch, n); j++ {
				id := fmt.Sprintf("sensor-gw-%06d", j)
				batch.Sessions = append(batch.Sessions, broker.StoredSession{ClientID: id, Expiry: 86400,
					OfflineSince: epoch, Subscriptions: subs(id, restoreSubs)})
			}
			mustSave(b, s, batch)
		}
		mustClose(b, s)
		size := dirBytes(dir)
		var took time.Duration
		for range b.N {
			b.StartTimer()
			start := time.Now()
			s = mustOpen(b, k, dir)
			st, err := s.Load(context.Background())
			took += time.Since(start)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if len(st.Sessions) != n || len(st.Sessions[n-1].Subscriptions) != restoreSubs {
				b.Fatalf("loaded %d sessions, want %d with %d subscriptions", len(st.Sessions), n, restoreSubs)
			}
			mustClose(b, s)
		}
		b.ReportMetric(took.Seconds()/float64(b.N), "load-s")
		b.ReportMetric(float64(n*b.N)/took.Seconds(), "sessions/s")
		b.ReportMetric(float64(size)/mb, "MB-on-disk")
	})
}

// BenchmarkRetained is workload (d): 10,000 retained topics; each Save
// replaces 1,000 of them chosen at random (200-byte payloads), 50 Saves.
func BenchmarkRetained(b *testing.B) {
	forKinds(b, func(b *testing.B, k kind, dir string) {
		var took time.Duration
		var written int64
		var size int64
		for i := range b.N {
			b.StopTimer()
			d := filepath.Join(dir, strconv.Itoa(i))
			s := mustOpen(b, k, d)
			topics := make([]string, retainedTopics)
			var all broker.StoreBatch
			for j := range topics {
				topics[j] = fmt.Sprintf("plant/line%d/m%d/setpoint", j/100, j%100)
				all.Retained = append(all.Retained, benchMsg(topics[j], j))
			}
			mustSave(b, s, all)
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			w0 := writeBytes()
			b.StartTimer()
			start := time.Now()
			for r := range retainedRounds {
				var batch broker.StoreBatch
				seen := make(map[int]bool, retainedBatch)
				for len(batch.Retained) < retainedBatch {
					j := rng.IntN(retainedTopics)
					if !seen[j] {
						seen[j] = true
						batch.Retained = append(batch.Retained, benchMsg(topics[j], r*retainedBatch+j))
					}
				}
				mustSave(b, s, batch)
			}
			took += time.Since(start)
			b.StopTimer()
			mustClose(b, s)
			written += writeBytes() - w0
			size = dirBytes(d)
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*retainedRounds*retainedBatch)/took.Seconds(), "updates/s")
		b.ReportMetric(float64(written)/mb/float64(b.N), "MB-written/op")
		b.ReportMetric(float64(size)/mb, "MB-on-disk")
	})
}
