package kafkasource

import (
	"context"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// offsetCommitter commits offsets; *kafkago.Reader is one.
type offsetCommitter interface {
	CommitMessages(ctx context.Context, msgs ...kafkago.Message) error
}

// tp names a partition.
type tp struct {
	topic     string
	partition int
}

// entry is one record fetched and not yet committable.
type entry struct {
	msg  kafkago.Message
	done bool
}

// committer tracks, per partition, the records fetched in order and
// commits the offset of the last record of the longest submitted prefix:
// a record's offset is never committed before every earlier record of
// its partition is durable. One goroutine (run) commits, at most every
// commit_interval, coalescing what became committable meanwhile.
type committer struct {
	r        offsetCommitter
	interval time.Duration
	retry    time.Duration
	log      *slog.Logger
	m        *metrics

	mu      sync.Mutex
	pending map[tp][]*entry        // fetched, in fetch order; done prefix popped
	ready   map[tp]kafkago.Message // newest committable record per partition
	kick    chan struct{}          // ready has something; capacity 1
	quit    chan struct{}          // closed by stop
	once    sync.Once
}

func newCommitter(r offsetCommitter, cfg Config, log *slog.Logger, m *metrics) *committer {
	return &committer{
		r: r, interval: cfg.CommitInterval, retry: cfg.RetryInitial, log: log, m: m,
		pending: map[tp][]*entry{}, ready: map[tp]kafkago.Message{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}),
	}
}

// track registers a fetched record; fetch order is offset order within a
// partition (after a rebalance hands a partition back, older offsets may
// follow newer ones: the commit then goes back, which only rereads).
func (c *committer) track(msg kafkago.Message) *entry {
	e := &entry{msg: msg}
	k := tp{msg.Topic, msg.Partition}
	c.mu.Lock()
	c.pending[k] = append(c.pending[k], e)
	c.mu.Unlock()
	return e
}

// done marks e's command durable and makes the submitted prefix of its
// partition committable.
func (c *committer) done(e *entry) {
	k := tp{e.msg.Topic, e.msg.Partition}
	c.mu.Lock()
	e.done = true
	q := c.pending[k]
	n := 0
	for n < len(q) && q[n].done {
		n++
	}
	if n > 0 {
		c.ready[k] = q[n-1].msg
		clear(q[:n])
		if n == len(q) {
			delete(c.pending, k)
		} else {
			c.pending[k] = q[n:]
		}
	}
	c.mu.Unlock()
	if n > 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// take returns the committable records and forgets them.
func (c *committer) take() []kafkago.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ready) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, 0, len(c.ready))
	for _, m := range c.ready {
		msgs = append(msgs, m)
	}
	clear(c.ready)
	return msgs
}

// putBack returns msgs that failed to commit, unless a newer record of
// the same partition became committable meanwhile.
func (c *committer) putBack(msgs []kafkago.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		k := tp{m.Topic, m.Partition}
		if cur, ok := c.ready[k]; !ok || cur.Offset < m.Offset {
			c.ready[k] = m
		}
	}
}

// run commits until stop is called, then commits once more what became
// committable, or until ctx ends (no final commit: the reader is gone).
func (c *committer) run(ctx context.Context) {
	for {
		select {
		case <-c.kick:
		case <-ctx.Done():
			return
		case <-c.quit:
			c.final(ctx)
			return
		}
		wait := c.interval
		if !c.commit(ctx) {
			wait = max(wait, c.retry)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			case <-c.quit:
				t.Stop()
			}
		}
	}
}

// commit commits what is ready; false after an error.
func (c *committer) commit(ctx context.Context) bool {
	msgs := c.take()
	if len(msgs) == 0 {
		return true
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		c.putBack(msgs)
		if ctx.Err() == nil {
			c.m.commitErrors.Inc()
			c.log.Warn("committing kafka command offsets; retrying", "err", err)
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
		return false
	}
	return true
}

// final commits what is ready at shutdown, within shutdownTimeout.
func (c *committer) final(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	c.commit(ctx)
}

// stop ends run after its final commit. It is safe to call twice.
func (c *committer) stop() { c.once.Do(func() { close(c.quit) }) }
