package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// target is a broker the suite runs against.
type target struct {
	port int
	pid  int // 0 when the broker runs in the test process
}

// runBench runs Main with args plus the target and -json -quiet, and
// decodes the summary.
func runBench(t *testing.T, tg target, args ...string) summary {
	t.Helper()
	s, err := benchJSON(t, tg, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// benchJSON is runBench for goroutines other than the test's.
func benchJSON(t *testing.T, tg target, args ...string) (summary, error) {
	args = append(args, "-port", strconv.Itoa(tg.port), "-json", "-quiet")
	var stdout, stderr bytes.Buffer
	var s summary
	if code := Main(args, &stdout, &stderr); code != 0 {
		return s, fmt.Errorf("sluice bench %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		return s, fmt.Errorf("decoding summary %q: %w", stdout.String(), err)
	}
	t.Logf("%s", bytes.TrimSpace(stdout.Bytes()))
	return s, nil
}

// checkClean fails on errors, drops and partial connection.
func checkClean(t *testing.T, s summary) {
	t.Helper()
	if s.Errors != 0 || s.Dropped != 0 || s.Connected != s.Clients {
		t.Errorf("errors %d %q, dropped %d, connected %d of %d", s.Errors, s.ErrorList, s.Dropped, s.Connected, s.Clients)
	}
}

// checkDelivery checks the accounting of a combined run: every message
// sent reaches every subscriber exactly once (if lossless) and the
// counts agree with each other.
func checkDelivery(t *testing.T, s summary, lossless bool) {
	t.Helper()
	if s.Sent == 0 {
		t.Fatal("nothing sent")
	}
	if s.Expected != s.Sent*int64(s.Subs) {
		t.Errorf("expected %d, want sent %d x subs %d", s.Expected, s.Sent, s.Subs)
	}
	if s.Received-s.Duplicates-s.Foreign != s.Expected-s.Lost {
		t.Errorf("received %d - dups %d - foreign %d != expected %d - lost %d", s.Received, s.Duplicates, s.Foreign, s.Expected, s.Lost)
	}
	if s.Lost < 0 || s.Foreign != 0 {
		t.Errorf("lost %d foreign %d", s.Lost, s.Foreign)
	}
	if lossless && (s.Lost != 0 || s.Duplicates != 0 || s.Received != s.Expected) {
		t.Errorf("lossless run: received %d of %d, lost %d, duplicates %d", s.Received, s.Expected, s.Lost, s.Duplicates)
	}
	if s.Latency == nil || s.Latency.N != uint64(s.Received-s.Duplicates) || s.Latency.P50 <= 0 || s.Latency.Max < s.Latency.P99 {
		t.Errorf("latency %+v for %d distinct deliveries", s.Latency, s.Received-s.Duplicates)
	}
	if s.QoS > 0 && (s.Acked != s.Sent || s.Unacked != 0 || s.Rejected != 0) {
		t.Errorf("acked %d of %d, unacked %d, rejected %d", s.Acked, s.Sent, s.Unacked, s.Rejected)
	}
}

// runSuite runs every mode briefly against tg. unboundedQueues says the
// broker queues any backlog for a subscriber instead of dropping it, so
// full-speed QoS 1 must be lossless too.
func runSuite(t *testing.T, tg target, unboundedQueues bool) {
	traffic := []struct {
		name     string
		args     []string
		lossless bool
	}{
		{"fanin qos0", []string{"fanin", "-pubs", "5", "-subs", "1", "-rate", "500"}, false},
		// Longer than a second of flood: connections whose read buffer
		// always holds part of the next packet must not time out.
		{"fanin qos0 full speed", []string{"fanin", "-pubs", "4", "-subs", "1", "-duration", "2s"}, false},
		{"fanin qos1", []string{"fanin", "-pubs", "10", "-subs", "1", "-qos", "1", "-rate", "300"}, true},
		{"fanin qos1 full speed", []string{"fanin", "-pubs", "4", "-subs", "1", "-qos", "1", "-inflight", "16"}, unboundedQueues},
		{"fanin qos2 v5", []string{"fanin", "-pubs", "4", "-subs", "2", "-qos", "2", "-v", "5", "-rate", "300"}, true},
		{"fanout qos1", []string{"fanout", "-pubs", "1", "-subs", "10", "-qos", "1", "-rate", "500"}, true},
		{"fanout qos1 v5 full speed", []string{"fanout", "-pubs", "1", "-subs", "3", "-qos", "1", "-v", "5"}, unboundedQueues},
		{"fanout qos0 small payload", []string{"fanout", "-pubs", "2", "-subs", "3", "-size", "24", "-rate", "500"}, false},
	}
	for _, tt := range traffic {
		t.Run(tt.name, func(t *testing.T) {
			s := runBench(t, tg, append([]string{tt.args[0], "-duration", "1s"}, tt.args[1:]...)...)
			checkClean(t, s)
			checkDelivery(t, s, tt.lossless)
		})
	}

	pubs := []struct {
		name string
		args []string
	}{
		{"pub qos0 paced", []string{"pub", "-clients", "2", "-rate", "1000"}},
		{"pub qos1", []string{"pub", "-clients", "2", "-qos", "1", "-inflight", "8"}},
		{"pub qos2 v5", []string{"pub", "-clients", "2", "-qos", "2", "-v", "5", "-size", "10"}},
	}
	for _, tt := range pubs {
		t.Run(tt.name, func(t *testing.T) {
			s := runBench(t, tg, append(tt.args, "-duration", "1s")...)
			checkClean(t, s)
			if s.Sent == 0 || s.Received != 0 {
				t.Errorf("sent %d received %d", s.Sent, s.Received)
			}
			if s.QoS > 0 && (s.Acked != s.Sent || s.Unacked != 0) {
				t.Errorf("acked %d of %d, unacked %d", s.Acked, s.Sent, s.Unacked)
			}
			if strings.Contains(tt.name, "paced") && float64(s.Sent) > 2*1000*s.Seconds+2 {
				t.Errorf("sent %d in %.2fs, above the 2 x 1000/s pace", s.Sent, s.Seconds)
			}
		})
	}

	t.Run("sub with a separate pub", func(t *testing.T) {
		var sub summary
		var subErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			sub, subErr = benchJSON(t, tg, "sub", "-clients", "2", "-qos", "1", "-topic", "solo/#", "-duration", "4s")
		})
		time.Sleep(time.Second) // let the subscribers subscribe
		pub := runBench(t, tg, "pub", "-clients", "2", "-qos", "1", "-topic", "solo/%i", "-rate", "200", "-duration", "1s")
		wg.Wait()
		if subErr != nil {
			t.Fatal(subErr)
		}
		checkClean(t, sub)
		if pub.Sent == 0 || sub.Received != 2*pub.Sent || sub.Lost != 0 || sub.Duplicates != 0 {
			t.Errorf("pub sent %d; sub received %d (want %d), gaps %d, duplicates %d",
				pub.Sent, sub.Received, 2*pub.Sent, sub.Lost, sub.Duplicates)
		}
	})

	t.Run("idle connections are kept alive", func(t *testing.T) {
		// Brokers drop a client silent for 1.5 x keep alive: 1.5 s here.
		for _, v := range []string{"3", "5"} {
			s := runBench(t, tg, "conn", "-clients", "20", "-keepalive", "1s", "-duration", "2500ms", "-v", v)
			checkClean(t, s)
		}
	})

	t.Run("conn", func(t *testing.T) {
		args := []string{"conn", "-clients", "300", "-duration", "1s", "-connrate", "2000"}
		if tg.pid > 0 {
			args = append(args, "-pid", strconv.Itoa(tg.pid))
		}
		s := runBench(t, tg, args...)
		checkClean(t, s)
		c := s.Connect
		if c == nil || s.Connected != 300 || c.Failed != 0 || c.Latency == nil || c.Latency.N != 300 || c.HeldSeconds < 0.9 {
			t.Fatalf("conn summary %+v %+v", s, c)
		}
		if c.Seconds < 0.1 {
			t.Errorf("300 connections at 2000/s took %.3fs, the pace was not kept", c.Seconds)
		}
		if tg.pid > 0 && (c.RSSBeforeKB <= 0 || c.RSSHeldKB <= 0) {
			t.Errorf("rss before %d held %d", c.RSSBeforeKB, c.RSSHeldKB)
		}
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening polls addr until it accepts a connection.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startMosquitto runs a mosquitto on a free loopback port until the test
// ends. A missing mosquitto skips the test, except under CI=true.
func startMosquitto(t *testing.T) target {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto not installed (apt-get install mosquitto)")
		}
		t.Skip("mosquitto not installed")
	}
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	// max_queued_messages 0: no limit, so a subscriber that falls behind
	// under a full-speed QoS 1 load is queued for, not dropped.
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mosquitto: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", logs.String())
		}
	})
	waitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	return target{port: port, pid: cmd.Process.Pid}
}

func TestAgainstMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	runSuite(t, startMosquitto(t), true)
}
