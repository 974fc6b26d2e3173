package store_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// buildSluice builds the sluice binary into a temporary directory.
func buildSluice(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command(goBin, "build", "-o", bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback address with a port free right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProc runs the binary with cfg and waits until addr accepts.
func startProc(t *testing.T, bin, cfg, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stderr = os.Stderr
	if !testing.Verbose() {
		cmd.Stderr = nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func client(t *testing.T, addr, id string, clean bool, h mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(false).SetKeepAlive(30 * time.Second)
	if h != nil {
		o.SetDefaultPublishHandler(h)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	return c
}

// TestKill9KeepsAckedMessages starts the real binary, queues QoS 1
// messages for an offline persistent session from several publishers,
// kills the process with SIGKILL mid-stream, restarts it and checks that
// the subscriber receives every message whose PUBACK was seen, and that
// the retained message survived.
func TestKill9KeepsAckedMessages(t *testing.T) {
	bin := buildSluice(t)
	for _, tc := range []struct {
		name string
		sig  os.Signal
	}{
		{"kill -9", os.Kill},
		{"clean stop", os.Interrupt},
	} {
		t.Run(tc.name, func(t *testing.T) { restartKeepsAckedMessages(t, bin, tc.sig) })
	}
}

// restartKeepsAckedMessages is one run of TestKill9KeepsAckedMessages,
// stopping the process with sig.
func restartKeepsAckedMessages(t *testing.T, bin string, sig os.Signal) {
	dir := t.TempDir()
	addr := freePort(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	yaml := fmt.Sprintf(`broker:
  listeners:
    - name: default
      address: %s
      allow_anonymous: true
  max_queued_messages: 100000
  max_queued_bytes: 104857600
admin:
  address: 127.0.0.1:0
ingest:
  data_dir: %q
`, addr, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	proc := startProc(t, bin, cfg, addr)
	sub := client(t, addr, "sub1", false, nil)
	if tok := sub.Subscribe("d/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	ret := client(t, addr, "ret", true, nil)
	if tok := ret.Publish("r/1", 1, true, "keep"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("retained publish: %v", tok.Error())
	}
	ret.Disconnect(100)

	// Publishers: synchronous QoS 1, each records what was acked.
	const pubs = 4
	var mu sync.Mutex
	acked := map[string]bool{}
	var total atomic.Int64
	var wg sync.WaitGroup
	for p := range pubs {
		c := client(t, addr, "pub"+strconv.Itoa(p), true, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				payload := fmt.Sprintf("%d-%d", p, i)
				tok := c.Publish("d/"+strconv.Itoa(p), 1, false, payload)
				if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil || !c.IsConnectionOpen() {
					return
				}
				mu.Lock()
				acked[payload] = true
				mu.Unlock()
				total.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for total.Load() < 400 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	wg.Wait()
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	if want < 100 {
		t.Fatalf("only %d messages acked before the kill", want)
	}
	t.Logf("%d messages acked before %v", want, sig)

	startProc(t, bin, cfg, addr)
	got := make(chan string, 100000)
	sub = client(t, addr, "sub1", false, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) })
	defer sub.Disconnect(100)
	seen := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for missing := want; missing > 0; {
		select {
		case p := <-got:
			if acked[p] && !seen[p] {
				missing--
			}
			seen[p] = true
		case <-timeout:
			var lost []string
			for p := range acked {
				if !seen[p] {
					lost = append(lost, p)
				}
			}
			t.Fatalf("%d of %d acknowledged messages lost after %v, e.g. %v", len(lost), want, sig, lost[:min(5, len(lost))])
		}
	}

	rc := make(chan string, 1)
	check := client(t, addr, "check", true, nil)
	defer check.Disconnect(100)
	check.Subscribe("r/#", 1, func(_ mqtt.Client, m mqtt.Message) { rc <- string(m.Payload()) })
	select {
	case p := <-rc:
		if p != "keep" {
			t.Fatalf("retained payload %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("retained message lost after %v", sig)
	}
}
