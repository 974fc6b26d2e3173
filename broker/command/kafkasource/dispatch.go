package kafkasource

import (
	"context"
	"sync"
)

// dispatcher runs jobs on a fixed number of workers while keeping each
// key's (device's) jobs in order: a key's next job starts only when its
// previous one has finished. Unlike lanes chosen by a hash of the key, a
// job never waits behind another device's slow submit while a worker is
// free. Memory is bounded by slots: push waits while that many jobs are
// queued or running.
type dispatcher struct {
	slots chan struct{} // one token per job queued or running
	ready chan string   // keys with a job to start and none running; never full (≤ one entry per slot)

	mu    sync.Mutex
	queue map[string][]*job // per key: jobs not started; present while the key has a job queued or running
}

func newDispatcher(slots int) *dispatcher {
	return &dispatcher{slots: make(chan struct{}, slots), ready: make(chan string, slots), queue: map[string][]*job{}}
}

// push queues j under key; false if ctx ended while waiting for room.
func (d *dispatcher) push(ctx context.Context, key string, j *job) bool {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	d.mu.Lock()
	q, busy := d.queue[key]
	d.queue[key] = append(q, j)
	d.mu.Unlock()
	if !busy {
		d.ready <- key
	}
	return true
}

// work runs jobs with run until ctx ends.
func (d *dispatcher) work(ctx context.Context, run func(*job)) {
	for ctx.Err() == nil {
		var key string
		select {
		case <-ctx.Done():
			return
		case key = <-d.ready:
		}
		d.mu.Lock()
		q := d.queue[key]
		j := q[0]
		q[0] = nil
		d.queue[key] = q[1:]
		d.mu.Unlock()
		run(j)
		d.mu.Lock()
		more := len(d.queue[key]) > 0
		if !more {
			delete(d.queue, key)
		}
		d.mu.Unlock()
		if more {
			d.ready <- key // behind the keys already waiting: fair
		}
		<-d.slots
	}
}
