package listener

import "sync/atomic"

// Handshake stages, for counting and logging failures.
const (
	stageProxy = iota
	stageTLS
	stageWebSocket
	numStages
)

var stageNames = [numStages]string{"proxy", "tls", "websocket"}

// counters are a listener's statistics, updated with atomics.
type counters struct {
	accepted         atomic.Uint64
	handshaking      atomic.Int64
	timedOut         atomic.Uint64
	aborted          atomic.Uint64
	failed           [numStages]atomic.Uint64
	certReloads      atomic.Uint64
	certReloadErrors atomic.Uint64
}

// Stats is a snapshot of a listener's counters.
type Stats struct {
	// Accepted counts connections that finished their handshake and
	// entered the accept queue.
	Accepted uint64
	// Handshaking is the number of connections in their handshake now.
	Handshaking int64
	// Queued is the number of ready connections waiting for Accept.
	Queued int
	// TimedOut counts connections closed at the handshake deadline
	// (slowloris and dead clients).
	TimedOut uint64
	// Aborted counts clients that closed or reset the connection during
	// the handshake (load balancer health checks do).
	Aborted uint64
	// Failed counts connections closed for a bad handshake, by stage:
	// "proxy", "tls", "websocket".
	Failed map[string]uint64
	// CertReloads counts certificate reloads; CertReloadErrors counts new
	// files that failed to load (the old certificate stays in use).
	CertReloads, CertReloadErrors uint64
}

// Stats returns a snapshot of the listener's counters.
func (l *Listener) Stats() Stats {
	s := Stats{
		Accepted:         l.stats.accepted.Load(),
		Handshaking:      l.stats.handshaking.Load(),
		Queued:           len(l.ready),
		TimedOut:         l.stats.timedOut.Load(),
		Aborted:          l.stats.aborted.Load(),
		Failed:           make(map[string]uint64, numStages),
		CertReloads:      l.stats.certReloads.Load(),
		CertReloadErrors: l.stats.certReloadErrors.Load(),
	}
	for i, name := range stageNames {
		s.Failed[name] = l.stats.failed[i].Load()
	}
	return s
}
