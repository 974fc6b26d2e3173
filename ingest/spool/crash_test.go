package spool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashEnv = "SLUICE_SPOOL_CRASH_DIR"

func crashOpts() Options {
	return Options{SegmentBytes: 64 << 10, MaxBytes: 1 << 30, CheckpointInterval: 10 * time.Millisecond}
}

// crashPayload is the record the child appends as goroutine g's i-th.
func crashPayload(g, i int) []byte {
	p := fmt.Appendf(nil, "g%d-i%d|", g, i)
	for len(p) < 200 {
		p = append(p, byte('A'+(g+i)%26))
	}
	return p
}

// TestCrashChild is the child side of TestCrashKill9: it appends from
// several goroutines and prints every offset AppendSync reported durable,
// until it is killed (or a bound expires).
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKill9 only")
	}
	s, err := Open(dir, crashOpts())
	if err != nil {
		fmt.Fprintf(os.Stdout, "ERROR %v\n", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				off, err := s.AppendSync(context.Background(), crashPayload(g, i))
				if err != nil {
					fmt.Fprintf(os.Stdout, "ERROR %v\n", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "DURABLE %d %d %d\n", off, g, i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3) // never reached in the test: the parent kills first
}

func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("parent only")
	}
	tests := []struct {
		name      string
		killAfter int // durable lines seen before SIGKILL
		rounds    int // crash/reopen cycles on the same directory
	}{
		{name: "early", killAfter: 50, rounds: 1},
		{name: "mid-stream across segments", killAfter: 3000, rounds: 1},
		{name: "repeated crashes", killAfter: 800, rounds: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := map[uint64][]byte{}
			for round := range tc.rounds {
				for off, data := range runCrashChild(t, dir, tc.killAfter) {
					if _, dup := want[off]; dup {
						t.Fatalf("round %d: offset %d reported durable twice", round, off)
					}
					want[off] = data
				}
			}
			s := openT(t, dir, crashOpts())
			head := s.Stats().Head
			c, err := s.Cursor("verify")
			if err != nil {
				t.Fatal(err)
			}
			got := map[uint64][]byte{}
			for _, r := range readN(t, c, int(head)) {
				got[r.Offset] = r.Data
			}
			for off, data := range want {
				g, ok := got[off]
				if !ok {
					t.Fatalf("offset %d was reported durable but is missing (head %d)", off, head)
				}
				if string(g) != string(data) {
					t.Fatalf("offset %d: data %q, want %q", off, trunc(g), trunc(data))
				}
			}
			t.Logf("%d durable offsets verified, head %d", len(want), head)
		})
	}
}

// runCrashChild runs the child on dir, kills it with SIGKILL after
// killAfter durable reports, and returns every offset it reported.
func runCrashChild(t *testing.T, dir string, killAfter int) map[uint64][]byte {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	durable := map[uint64][]byte{}
	sc := bufio.NewScanner(out)
	killed := false
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERROR") {
			t.Errorf("child: %s", line)
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "DURABLE" {
			continue
		}
		off, _ := strconv.ParseUint(f[1], 10, 64)
		g, _ := strconv.Atoi(f[2])
		i, _ := strconv.Atoi(f[3])
		durable[off] = crashPayload(g, i)
		if !killed && len(durable) >= killAfter {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before being killed (%d reports): %v", len(durable), err)
	}
	return durable
}
