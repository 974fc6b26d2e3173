// Package e2e runs the real sluice binary against a real Kafka wire
// protocol peer (internal/kfakeserver, a separate process that can be
// killed and restarted on the same port and data dir), publishing with
// real MQTT clients and reading back with a real Kafka consumer.
//
// The benchmark (TestBenchEndToEnd) runs only with SLUICE_BENCH=1.
package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// binaries builds cmd/sluice and internal/kfakeserver once per test
// binary and returns their paths.
func binaries(t testing.TB) (sluice, kfake string) {
	t.Helper()
	return e2etest.BuildSluice(t), e2etest.Binary(t, "github.com/sluicehq/sluice/internal/kfakeserver")
}

// kafkaServer is internal/kfakeserver on a fixed port, optionally with a
// data dir, stoppable and restartable.
type kafkaServer struct {
	t    testing.TB
	bin  string
	args []string
	Addr string
	proc *e2etest.Process
}

// startKafka starts kfakeserver on a free port with the given extra
// flags (topics, data dir) and stops it when the test ends.
func startKafka(t testing.TB, bin string, flags ...string) *kafkaServer {
	t.Helper()
	k := &kafkaServer{t: t, bin: bin, args: append([]string{"-port", strconv.Itoa(e2etest.FreePort(t))}, flags...)}
	k.start()
	t.Cleanup(func() {
		if k.proc != nil {
			k.proc.Kill()
			if k.t.Failed() {
				k.proc.Dump(k.t, "kfakeserver")
			}
		}
	})
	return k
}

// start runs the server and waits for its address, retrying while the
// port is still held by the previous run.
func (k *kafkaServer) start() {
	k.t.Helper()
	var last string
	for attempt := 0; attempt < 50; attempt++ {
		addrs := make(chan string, 1)
		p, err := e2etest.StartProcess(k.bin, k.args, func(line string) {
			if a, ok := strings.CutPrefix(line, "listening "); ok {
				select {
				case addrs <- a:
				default:
				}
			}
		})
		if err != nil {
			k.t.Fatalf("starting kfakeserver: %v", err)
		}
		select {
		case a := <-addrs:
			k.proc, k.Addr = p, a
			return
		case <-p.Exited():
			last = p.Tail()
			time.Sleep(200 * time.Millisecond)
		case <-time.After(60 * time.Second):
			p.Kill()
			k.t.Fatal("kfakeserver printed no address within 60s")
		}
	}
	k.t.Fatalf("kfakeserver %v did not start: %s", k.args, last)
}

// stop ends the server with sig (SIGTERM: it flushes its data dir;
// SIGKILL: it does not).
func (k *kafkaServer) stop(sig syscall.Signal) {
	k.t.Helper()
	if !k.proc.Signal(sig, 60*time.Second) {
		k.t.Fatalf("kfakeserver did not exit within 60s of %v", sig)
	}
	if sig == syscall.SIGTERM && k.proc.Err() != nil {
		k.t.Errorf("kfakeserver exited with %v after SIGTERM", k.proc.Err())
	}
	k.proc = nil
}
