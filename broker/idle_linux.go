//go:build linux

package broker

import (
	"errors"
	"sync"
	"syscall"
	"time"
)

// idlePoller watches idle connections with one epoll instance, so an idle
// connection costs no goroutine (no stack): when its socket becomes
// readable, its keep alive expires or the server wakes it, a goroutine is
// started for it again. The Go runtime's own poller keeps the fd too; epoll
// allows one fd in several sets.
type idlePoller struct {
	s            *Server
	epfd         int
	wakeR, wakeW int // a pipe that interrupts epoll_wait

	mu        sync.Mutex
	conns     map[int32]*conn // parked connections by fd
	stopped   bool
	nextSweep int64
}

// sweepEvery is how often parked connections' keep alive deadlines are
// checked.
const sweepEvery = 500 * time.Millisecond

func newIdlePoller(s *Server) (*idlePoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, err
	}
	return &idlePoller{s: s, epfd: epfd, wakeR: p[0], wakeW: p[1], conns: make(map[int32]*conn)}, nil
}

// park registers c as idle until its socket is readable, until (keep alive;
// zero: none) passes or wake is called. It reports false when c cannot be
// parked (the caller then waits on a goroutine). After true the caller
// must not touch c: another goroutine may already run it.
func (ip *idlePoller) park(c *conn, until time.Time) bool {
	if ip == nil || c.fd < 0 {
		return false
	}
	ip.mu.Lock()
	defer ip.mu.Unlock()
	// Checked under mu: wake (called after the flags are set) takes mu.
	if ip.stopped || c.stopping() != nil {
		return false
	}
	c.idleUntil = 0
	if !until.IsZero() {
		c.idleUntil = until.UnixNano()
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.fd}
	op := syscall.EPOLL_CTL_ADD
	if c.epollAdded {
		op = syscall.EPOLL_CTL_MOD
	}
	err := syscall.EpollCtl(ip.epfd, op, int(c.fd), &ev)
	switch {
	case errors.Is(err, syscall.EEXIST):
		err = syscall.EpollCtl(ip.epfd, syscall.EPOLL_CTL_MOD, int(c.fd), &ev)
	case errors.Is(err, syscall.ENOENT):
		err = syscall.EpollCtl(ip.epfd, syscall.EPOLL_CTL_ADD, int(c.fd), &ev)
	}
	if err != nil {
		return false
	}
	c.epollAdded = true
	ip.conns[c.fd] = c
	return true
}

// wake resumes c on a new goroutine if it is parked.
func (ip *idlePoller) wake(c *conn) {
	if ip == nil || c.fd < 0 {
		return
	}
	ip.mu.Lock()
	parked := ip.conns[c.fd] == c
	if parked {
		delete(ip.conns, c.fd)
	}
	ip.mu.Unlock()
	if parked {
		go c.resume()
	}
}

// run waits for events until stop.
func (ip *idlePoller) run() {
	defer ip.s.wg.Done()
	events := make([]syscall.EpollEvent, 256)
	var ready []*conn
	for {
		n, err := syscall.EpollWait(ip.epfd, events, int(sweepEvery/time.Millisecond))
		if err != nil && !errors.Is(err, syscall.EINTR) {
			ip.s.log.Error("waiting for idle connections", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		ip.mu.Lock()
		if ip.stopped {
			ip.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(ip.wakeR) {
				var b [64]byte
				syscall.Read(ip.wakeR, b[:])
				continue
			}
			if c := ip.conns[ev.Fd]; c != nil {
				delete(ip.conns, ev.Fd)
				ready = append(ready, c)
			}
		}
		if now := time.Now().UnixNano(); now >= ip.nextSweep {
			ip.nextSweep = now + int64(sweepEvery)
			for fd, c := range ip.conns {
				if c.idleUntil != 0 && now >= c.idleUntil {
					delete(ip.conns, fd)
					ready = append(ready, c)
				}
			}
		}
		ip.mu.Unlock()
		for i, c := range ready {
			go c.resume()
			ready[i] = nil
		}
		ready = ready[:0]
	}
}

// stop ends run and releases the epoll instance. Every connection must
// have been woken before.
func (ip *idlePoller) stop() {
	if ip == nil {
		return
	}
	ip.mu.Lock()
	ip.stopped = true
	ip.mu.Unlock()
	syscall.Write(ip.wakeW, []byte{1})
}

// close releases the poller's file descriptors once run has returned.
func (ip *idlePoller) close() {
	if ip == nil {
		return
	}
	syscall.Close(ip.epfd)
	syscall.Close(ip.wakeR)
	syscall.Close(ip.wakeW)
}
