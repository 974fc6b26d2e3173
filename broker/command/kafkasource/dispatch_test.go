package kafkasource

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestDispatcher: per-key order under concurrency, no head-of-line
// blocking behind a stuck key, and push waiting for room.
func TestDispatcher(t *testing.T) {
	t.Run("per-key order", func(t *testing.T) {
		d := newDispatcher(64)
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		got := map[string][]int{}
		running := map[string]bool{}
		var wg, all sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				d.work(ctx, func(j *job) {
					k := j.cmd.Device
					mu.Lock()
					if running[k] {
						t.Errorf("two jobs of %s at once", k)
					}
					running[k] = true
					mu.Unlock()
					time.Sleep(time.Duration(j.msg.Offset%3) * 100 * time.Microsecond)
					mu.Lock()
					running[k] = false
					got[k] = append(got[k], int(j.msg.Offset))
					mu.Unlock()
					all.Done()
				})
			})
		}
		const n = 600
		all.Add(n)
		for i := range n {
			j := &job{}
			j.cmd.Device, j.msg.Offset = fmt.Sprint("k", i%7), int64(i)
			if !d.push(ctx, j.cmd.Device, j) {
				t.Fatal("push failed")
			}
		}
		all.Wait()
		cancel()
		wg.Wait()
		for k, offs := range got {
			for i := 1; i < len(offs); i++ {
				if offs[i] < offs[i-1] {
					t.Fatalf("key %s ran %d after %d", k, offs[i], offs[i-1])
				}
			}
		}
	})
	t.Run("no head-of-line blocking", func(t *testing.T) {
		d := newDispatcher(16)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		release := make(chan struct{})
		done := make(chan string, 16)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				d.work(ctx, func(j *job) {
					if j.cmd.Device == "stuck" {
						<-release
					}
					done <- j.cmd.Device
				})
			})
		}
		for _, k := range []string{"stuck", "stuck", "a", "b", "c"} {
			j := &job{}
			j.cmd.Device = k
			d.push(ctx, k, j)
		}
		for range 3 {
			select {
			case k := <-done:
				if k == "stuck" {
					t.Fatal("stuck job finished before release")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("other keys waited behind a stuck one")
			}
		}
		close(release)
		for range 2 {
			if k := <-done; k != "stuck" {
				t.Fatalf("got %s, want the stuck key's jobs", k)
			}
		}
		cancel()
		wg.Wait()
	})
	t.Run("push waits for room", func(t *testing.T) {
		d := newDispatcher(2)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		for i := range 2 {
			if !d.push(ctx, fmt.Sprint(i), &job{}) {
				t.Fatal("push into a free slot failed")
			}
		}
		if d.push(ctx, "x", &job{}) {
			t.Fatal("push beyond the bound did not wait")
		}
	})
}
