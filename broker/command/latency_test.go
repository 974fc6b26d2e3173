package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestHTTPToDeviceLatency measures HTTP submit → device latency at a fixed
// rate to many connected devices (SLUICE_COMMAND_LATENCY=1 to run; the
// rate, devices and duration are SLUICE_COMMAND_RATE, _DEVICES, _SECONDS).
// Latency counts from each command's scheduled send time (no coordinated
// omission) to its arrival at the device.
func TestHTTPToDeviceLatency(t *testing.T) {
	if os.Getenv("SLUICE_COMMAND_LATENCY") == "" {
		t.Skip("set SLUICE_COMMAND_LATENCY=1 to run the latency measurement")
	}
	envInt := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
			return v
		}
		return def
	}
	rate, devices, seconds := envInt("SLUICE_COMMAND_RATE", 1000), envInt("SLUICE_COMMAND_DEVICES", 1000), envInt("SLUICE_COMMAND_SECONDS", 10)
	h := start(t, t.TempDir(), false, nil, func(c *Config) { c.MaxPending = 1 << 20 })
	var (
		mu   sync.Mutex
		lats []time.Duration
		reqs []time.Duration // HTTP request durations
		late []time.Duration // how late requests started
		got  atomic.Int64
	)
	onMsg := func(_ mqtt.Client, m mqtt.Message) {
		ns, err := strconv.ParseInt(string(m.Payload()), 10, 64)
		if err != nil {
			return
		}
		d := time.Since(time.Unix(0, ns))
		mu.Lock()
		lats = append(lats, d)
		mu.Unlock()
		got.Add(1)
	}
	for i := range devices {
		id := fmt.Sprintf("dev%04d", i)
		o := mqtt.NewClientOptions().AddBroker("tcp://" + h.addr).SetClientID(id).SetCleanSession(true).SetAutoReconnect(false)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		if tok := c.Subscribe("devices/"+id+"/commands", 1, onMsg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer c.Disconnect(10)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	total := rate * seconds
	jobs := make(chan int, total)
	var wg sync.WaitGroup
	var failed atomic.Int64
	cpu0 := cpuTime()
	begin := time.Now().Add(100 * time.Millisecond)
	for range 256 { // concurrent requests: group commit shares each fsync among them
		wg.Go(func() {
			for i := range jobs {
				at := begin.Add(time.Duration(i) * time.Second / time.Duration(rate))
				time.Sleep(time.Until(at))
				body, _ := json.Marshal(map[string]any{"device": fmt.Sprintf("dev%04d", i%devices), "payload": strconv.FormatInt(at.UnixNano(), 10)})
				req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/api/v1/commands", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				t0 := time.Now()
				resp, err := client.Do(req)
				rt := time.Since(t0)
				mu.Lock()
				reqs = append(reqs, rt)
				late = append(late, t0.Sub(at))
				mu.Unlock()
				if err != nil || resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
					resp.Body.Close()
				}
			}
		})
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cpu := cpuTime() - cpu0
	mu.Lock()
	slices.Sort(lats)
	q := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	slices.Sort(reqs)
	slices.Sort(late)
	t.Logf("HTTP request p50 %v p99 %v; start lag p50 %v p99 %v", reqs[len(reqs)/2], reqs[len(reqs)*99/100], late[len(late)/2], late[len(late)*99/100])
	t.Logf("process CPU %v per command (HTTP client, service, broker and devices together); load %s", cpu/time.Duration(total), loadAvg())
	t.Logf("%d commands at %d/s to %d devices: received %d, HTTP failures %d, latency p50 %v p99 %v max %v",
		total, rate, devices, len(lats), failed.Load(), q(0.50), q(0.99), q(1))
	lost := total - len(lats)
	mu.Unlock()
	if lost != 0 || failed.Load() != 0 {
		t.Errorf("lost %d, HTTP failures %d", lost, failed.Load())
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
