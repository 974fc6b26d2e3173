package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// v5Client is an MQTT 5 client (paho.golang) publishing one QoS 1
// message at a time and reporting each PUBACK's reason code.
type v5Client struct {
	id  string
	c   *paho.Client
	seq int
	pad string
}

func dialV5(t *testing.T, addr, id string) *v5Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 60 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
	if err != nil {
		t.Fatalf("connecting %s: %v", id, err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("connecting %s: reason %#x", id, ca.ReasonCode)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return &v5Client{id: id, c: c}
}

// publish sends the next numbered message and returns its PUBACK reason
// code and how long the PUBACK took.
func (v *v5Client) publish(t *testing.T) (seq int, code byte, took time.Duration) {
	t.Helper()
	v.seq++
	payload, _ := json.Marshal(msgID{Client: v.id, Seq: v.seq, Pad: v.pad})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	pr, err := v.c.Publish(ctx, &paho.Publish{QoS: 1, Topic: "dev/" + v.id, Payload: payload})
	took = time.Since(start)
	if pr == nil {
		t.Fatalf("%s seq %d: no PUBACK: %v", v.id, v.seq, err)
	}
	if (pr.ReasonCode >= 0x80) != (err != nil) {
		t.Fatalf("%s seq %d: reason %#x with error %v", v.id, v.seq, pr.ReasonCode, err)
	}
	return v.seq, pr.ReasonCode, took
}

// TestSpoolFull fills a tiny spool while the webhook is down. Under
// policy block, MQTT 5 publishers get PUBACK 0x97 (quota exceeded) once
// block_timeout passes, the refusals are counted as dropped{rejected},
// and everything acknowledged is delivered after the webhook recovers.
// Under drop_oldest, publishers are never refused and the records lost
// are counted as dropped{spool_full}. The accounting balances in both.
func TestSpoolFull(t *testing.T) {
	const blockTimeout = 500 * time.Millisecond
	for _, policy := range []string{"block", "drop_oldest"} {
		t.Run(policy, func(t *testing.T) {
			h := newHook(t)
			h.SetAnswer(refuseAll(http.StatusServiceUnavailable))
			dir := t.TempDir()
			cfg := setup{
				DataDir: filepath.Join(dir, "data"), HookURL: h.URL(), Body: "array",
				SpoolMax: "64KiB", SegmentBytes: "8KiB", Policy: policy, BlockTimeout: blockTimeout,
				// Small lanes, so the records read ahead into memory are
				// few next to what the spool holds (about 60).
				Lanes: 1, QueueSize: 8, BatchRecords: 8,
			}.write(t, dir)
			p := startSluice(t, cfg)

			clients := []*v5Client{dialV5(t, p.MQTTAddr, "full-0"), dialV5(t, p.MQTTAddr, "full-1")}
			for _, c := range clients {
				c.pad = strings.Repeat("x", 1000) // about 60 records fill the spool
			}
			acked := map[string][]int{}
			rejected := 0
			const maxPublishes = 1000 // the spool holds about 60
			for n := 0; n < maxPublishes && rejected < 3; n++ {
				c := clients[n%len(clients)]
				seq, code, took := c.publish(t)
				switch {
				case code == 0:
					acked[c.id] = append(acked[c.id], seq)
				case code == 0x97 && policy == "block":
					rejected++
					if took < blockTimeout*9/10 {
						t.Errorf("%s seq %d refused after %v, before block_timeout %v", c.id, seq, took, blockTimeout)
					}
				default:
					t.Fatalf("%s seq %d: PUBACK reason %#x", c.id, seq, code)
				}
			}
			total := 0
			for _, s := range acked {
				total += len(s)
			}
			st := p.waitBalanced(t, 30*time.Second)
			f := st.flow("dev", "hook")
			t.Logf("spool full: %d acked, %d refused; %v; spool %d bytes in %d segments", total, rejected, f, st.Spool.Bytes, st.Spool.Segments)
			switch policy {
			case "block":
				if rejected == 0 {
					t.Fatalf("no publish refused after %d acked ones", total)
				}
				if f.Dropped["rejected"] != int64(rejected) || st.Accounting.Rejected != int64(rejected) {
					t.Errorf("%v, rejected %d: want %d counted as dropped{rejected}", f, st.Accounting.Rejected, rejected)
				}
				if f.Buffered != int64(total) {
					t.Errorf("%v: want the %d acked messages buffered", f, total)
				}
			case "drop_oldest":
				// The spool logged its drops; the accounting must show them,
				// or buffered counts records that no longer exist.
				if f.Dropped["spool_full"] == 0 {
					t.Fatalf("%v: want the records drop_oldest deleted counted as dropped{spool_full}", f)
				}
			}
			newest := map[string][]int{}
			for id, seqs := range acked {
				newest[id] = seqs[len(seqs)-1:]
			}

			// The webhook recovers: everything still spooled is delivered
			// and publishers are accepted again.
			h.SetAnswer(nil)
			if policy == "block" {
				eventually(t, 60*time.Second, func() (bool, string) {
					n, sample := h.missing(acked)
					return n == 0, fmt.Sprintf("%d acked messages not delivered, e.g. %v", n, sample)
				})
			}
			// drop_oldest keeps the newest records.
			eventually(t, 60*time.Second, func() (bool, string) {
				n, sample := h.missing(newest)
				return n == 0, fmt.Sprintf("newest acked messages not delivered: %v", sample)
			})
			for _, c := range clients {
				seq, code, _ := c.publish(t)
				if code != 0 {
					t.Fatalf("%s seq %d after the recovery: reason %#x", c.id, seq, code)
				}
				acked[c.id] = append(acked[c.id], seq)
				eventually(t, 60*time.Second, func() (bool, string) {
					return h.Has(c.id, seq), fmt.Sprintf("%s seq %d not delivered", c.id, seq)
				})
			}
			st = p.waitSettled(t, 60*time.Second)
			f = st.flow("dev", "hook")
			var dropped int64
			for _, n := range f.Dropped {
				dropped += n
			}
			if f.Delivered+dropped != f.Received || f.DeadLettered != 0 {
				t.Errorf("settled: %v", f)
			}
			t.Logf("settled: %v; webhook accepted %d records", f, h.accepted.Load())
			p.Stop()
		})
	}
}
