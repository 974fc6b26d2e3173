package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// testdata returns the absolute path of a file in schemas/testdata.
func testdata(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseConfig is the part of every test's config before its schemas,
// sinks and rules: JSON logs, anonymous MQTT and admin listeners on free
// ports, the spool in dataDir and quick retries.
func baseConfig(dataDir string) string {
	return `log: {level: info, format: json}
broker:
  listeners: [{name: e2e, address: "127.0.0.1:0", allow_anonymous: true}]
admin: {address: "127.0.0.1:0"}
ingest:
  durability: spool
  data_dir: ` + strconv.Quote(dataDir) + `
  retry: {initial: 20ms, max: 500ms}
`
}

// hookSink is a webhook sink named "hook" posting JSON arrays to url.
func hookSink(url string) string {
	return `sinks:
  hook:
    type: webhook
    webhook: {url: ` + strconv.Quote(url) + `, body: array, timeout: 5s}
`
}

// record is the part of a webhook record the tests read.
type record struct {
	Rule     string          `json:"rule"`
	Topic    string          `json:"topic"`
	ClientID string          `json:"client_id"`
	Payload  json.RawMessage `json:"payload"`
}

// hook is an httptest.Server receiving the webhook sink's array bodies.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	recs []record
	bad  []string
}

// newHook starts a receiver, closed when the test ends.
func newHook(t testing.TB) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var recs []record
		if err == nil {
			err = json.Unmarshal(body, &recs)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.bad = append(h.bad, fmt.Sprintf("%v: %s", err, body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.recs = append(h.recs, recs...)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// URL is where the sink posts.
func (h *hook) URL() string { return h.srv.URL + "/in" }

// records returns a copy of what arrived, and the bodies refused.
func (h *hook) records() ([]record, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.recs...), append([]string(nil), h.bad...)
}

// waitRecords waits until at least n records arrived and returns them.
func (h *hook) waitRecords(t testing.TB, n int, timeout time.Duration) []record {
	t.Helper()
	var recs []record
	eventually(t, timeout, func() (bool, string) {
		var bad []string
		recs, bad = h.records()
		if len(bad) > 0 {
			t.Fatalf("webhook bodies not JSON arrays: %q", bad)
		}
		return len(recs) >= n, fmt.Sprintf("%d of %d webhook records arrived", len(recs), n)
	})
	return recs
}

// eventually polls cond every 50ms until it holds, failing after timeout
// with cond's last description.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, what := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// publish sends payload at QoS 1 and waits for the PUBACK.
func publish(t testing.TB, c mqtt.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing to %s: acked %v, %v", topic, tok.Error() == nil, tok.Error())
	}
}

// metric reads the value of the series name{labels} from /metrics; ok is
// false when the series is absent. labels is the text between the braces
// in Prometheus's order (sorted by name), "" for none.
func metric(t testing.TB, adminURL, name, labels string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatalf("getting /metrics: %v", err)
	}
	defer resp.Body.Close()
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, found := strings.CutPrefix(sc.Text(), series+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		return v, true
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return 0, false
}

// waitMetric waits until the series equals want.
func waitMetric(t testing.TB, adminURL, name, labels string, want float64) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		v, ok := metric(t, adminURL, name, labels)
		return ok && v == want, fmt.Sprintf("%s{%s} = %v (present %v), want %v", name, labels, v, ok, want)
	})
}

// dlqEntry is one dead letter as GET /api/v1/deadletters lists it.
type dlqEntry struct {
	ID       uint64 `json:"id"`
	Rule     string `json:"rule"`
	Sink     string `json:"sink"`
	Topic    string `json:"topic"`
	ClientID string `json:"client_id"`
	Payload  []byte `json:"payload"`
	Error    string `json:"error"`
	Replayed bool   `json:"replayed"`
}

// deadLetters reads GET /api/v1/deadletters.
func deadLetters(t testing.TB, adminURL string) []dlqEntry {
	t.Helper()
	resp, err := http.Get(adminURL + "/api/v1/deadletters?limit=1000")
	if err != nil {
		t.Fatalf("listing dead letters: %v", err)
	}
	defer resp.Body.Close()
	var res struct {
		Entries []dlqEntry `json:"entries"`
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	if err == nil {
		err = json.Unmarshal(body, &res)
	}
	if err != nil {
		t.Fatalf("listing dead letters: %v: %s", err, body)
	}
	return res.Entries
}

// sluiceCmd runs the sluice binary with args and returns its stdout; a
// non-zero exit fails the test.
func sluiceCmd(t testing.TB, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = e2etest.CleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, errb.Bytes())
	}
	return out.String()
}
