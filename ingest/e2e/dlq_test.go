package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// dlqEntry is what `sluice dlq show` prints.
type dlqEntry struct {
	ID       uint64 `json:"id"`
	Rule     string `json:"rule"`
	Sink     string `json:"sink"`
	Topic    string `json:"topic"`
	ClientID string `json:"client_id"`
	QoS      int    `json:"qos"`
	Payload  []byte `json:"payload"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	Replayed bool   `json:"replayed"`
}

// dlqCmd runs `sluice dlq ARGS -admin URL`.
func dlqCmd(t *testing.T, p *proc, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	full := append([]string{"dlq", args[0], "-admin", p.AdminURL}, args[1:]...)
	cmd := exec.Command(e2etest.BuildSluice(t), full...)
	cmd.Env = e2etest.CleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sluice %s: %v", strings.Join(full, " "), err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// TestDeadLetterReplay has the webhook refuse one message with 400: it is
// dead-lettered while its neighbours are delivered; `sluice dlq list`
// shows it, `sluice dlq show` prints it with its payload, and once the
// webhook accepts it `sluice dlq replay` delivers it.
func TestDeadLetterReplay(t *testing.T) {
	const client, badSeq, total = "dlq-0", 13, 20
	h := newHook(t)
	h.SetAnswer(func(recs []hookRecord) int {
		for _, r := range recs {
			if r.id == (msgID{Client: client, Seq: badSeq}) {
				return http.StatusBadRequest
			}
		}
		return http.StatusOK
	})
	dir := t.TempDir()
	// One request per record, so the 400 concerns exactly one message.
	cfg := setup{DataDir: filepath.Join(dir, "data"), HookURL: h.URL(), Body: "object"}.write(t, dir)
	p := startSluice(t, cfg)

	pub := &publisher{ID: client}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pub.Run(ctx, p.MQTTAddr, total); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		n := len(h.Arrivals()[client])
		return n == total-1, fmt.Sprintf("webhook accepted %d of %d records", n, total-1)
	})
	if h.Has(client, badSeq) {
		t.Fatalf("webhook accepted seq %d it refused", badSeq)
	}
	st := p.waitSettled(t, 30*time.Second)
	if f := st.flow("dev", "hook"); f.DeadLettered != 1 || f.Delivered != total-1 {
		t.Fatalf("%v, want 1 dead-lettered and %d delivered", f, total-1)
	}

	out, errOut, code := dlqCmd(t, p, "list")
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut)
	}
	var id string
	for _, line := range strings.Split(out, "\n") {
		if fields := strings.Split(line, "\t"); len(fields) > 5 && fields[4] == "dev/"+client {
			id = fields[0]
			if fields[2] != "pending" || fields[3] != "dev->hook" {
				t.Errorf("dlq list line %q: want pending dev->hook", line)
			}
		}
	}
	if id == "" || !strings.Contains(out, "1 entries, 1 pending") {
		t.Fatalf("dlq list does not show the dead letter:\n%s", out)
	}

	out, errOut, code = dlqCmd(t, p, "show", id)
	if code != 0 {
		t.Fatalf("dlq show %s: exit %d: %s", id, code, errOut)
	}
	var e dlqEntry
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("dlq show printed %q: %v", out, err)
	}
	want, _ := json.Marshal(msgID{Client: client, Seq: badSeq})
	if !bytes.Equal(e.Payload, want) || e.Topic != "dev/"+client || e.ClientID != client ||
		e.Rule != "dev" || e.Sink != "hook" || e.QoS != 1 || e.Attempts != 1 || !strings.Contains(e.Error, "400") || e.Replayed {
		t.Errorf("dlq show: %+v (payload %s), want the refused message %s from %s, 1 attempt, a 400 error", e, e.Payload, want, client)
	}

	h.SetAnswer(nil)
	out, errOut, code = dlqCmd(t, p, "replay", id)
	if code != 0 || strings.TrimSpace(out) != "replayed "+id {
		t.Fatalf("dlq replay %s: exit %d, stdout %q, stderr %q", id, code, out, errOut)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		return h.Has(client, badSeq), fmt.Sprintf("replayed seq %d not at the webhook", badSeq)
	})
	st = p.waitSettled(t, 30*time.Second)
	p.checkEndpoints(t, st)
	if f := st.flow("dev", "hook"); f.Received != total+1 || f.Delivered != total || f.DeadLettered != 1 {
		t.Errorf("after the replay: %v, want received %d (the replay counts again), delivered %d, dead-lettered 1", f, total+1, total)
	}
	out, _, _ = dlqCmd(t, p, "list")
	if !strings.Contains(out, "\treplayed\t") || !strings.Contains(out, "1 entries, 0 pending") {
		t.Errorf("dlq list after the replay:\n%s", out)
	}
	if _, errOut, code = dlqCmd(t, p, "replay", id); code == 0 {
		t.Errorf("replaying %s twice succeeded; want an error", id)
	} else {
		t.Logf("second replay refused: %s", strings.TrimSpace(errOut))
	}
	p.Stop()
}
