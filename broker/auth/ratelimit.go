package auth

import (
	"net/netip"
	"sync"
	"time"
)

// limiter limits password attempts per source address with a token
// bucket: each address may make burst attempts, and regains one every
// window/burst. An attempt takes a token before the password is checked
// (so concurrent guesses are limited too) and a successful one gives it
// back, so only failures use the budget up. An address whose bucket is
// full is not stored; at most max addresses are, and when that is
// reached the least recently active one is forgotten.
type limiter struct {
	now     func() time.Time
	onEvict func()

	mu      sync.Mutex
	burst   float64       // 0: no limit
	regain  time.Duration // time to regain one attempt
	max     int
	buckets map[netip.Addr]*bucket
}

// bucket is one address's remaining attempts as of last.
type bucket struct {
	tokens float64
	last   time.Time // when tokens was computed
	active time.Time // the address's last attempt
}

func newLimiter(now func() time.Time, onEvict func()) *limiter {
	return &limiter{now: now, onEvict: onEvict, buckets: make(map[netip.Addr]*bucket)}
}

// configure sets the limits; existing buckets keep their state.
func (l *limiter) configure(maxFailures int, window time.Duration, maxAddrs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.burst, l.max = float64(maxFailures), maxAddrs
	if maxFailures > 0 {
		l.regain = window / time.Duration(maxFailures)
	}
	if maxFailures == 0 {
		clear(l.buckets)
	}
}

// refill brings b up to date at now.
func (l *limiter) refill(b *bucket, now time.Time) {
	if l.regain > 0 {
		b.tokens += float64(now.Sub(b.last)) / float64(l.regain)
	}
	b.tokens = min(b.tokens, l.burst)
	b.last = now
}

// take uses up one attempt of key; false means none is left.
func (l *limiter) take(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.burst == 0 {
		return true
	}
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.active = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refund gives back an attempt of key (it succeeded, or was abandoned).
func (l *limiter) refund(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return
	}
	l.refill(b, l.now())
	b.tokens++
	if b.tokens >= l.burst {
		delete(l.buckets, key)
	}
}

// makeRoom makes space for one more bucket when the map is full: first by
// dropping buckets that have refilled (they hold no information), then by
// forgetting the least recently active address.
func (l *limiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max {
		return
	}
	var oldest netip.Addr
	var oldestAt time.Time
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if oldestAt.IsZero() || b.active.Before(oldestAt) {
			oldest, oldestAt = k, b.active
		}
	}
	if len(l.buckets) >= l.max {
		delete(l.buckets, oldest)
		l.onEvict()
	}
}

// size returns the number of addresses tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
