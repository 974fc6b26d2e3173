package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// publisher is one MQTT 3.1.1 QoS 1 client (paho.mqtt.golang) publishing
// numbered messages {"client":ID,"seq":N} to dev/ID and recording which
// got a PUBACK.
type publisher struct {
	ID     string
	Window int           // PUBLISHes awaiting their PUBACK at once; default 16
	Pause  time.Duration // between two publishes; 0: as fast as the window allows

	acked    atomic.Int64
	mu       sync.Mutex
	ackedSeq []int
	last     int   // highest seq handed to the client
	err      error // why the last run stopped early
}

// Acked returns how many messages got a PUBACK so far.
func (p *publisher) Acked() int64 { return p.acked.Load() }

// AckedSeqs returns the acknowledged sequence numbers.
func (p *publisher) AckedSeqs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.ackedSeq...)
}

// Last returns the highest sequence number published.
func (p *publisher) Last() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Err returns why the last run stopped before its end, if it did.
func (p *publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

type pending struct {
	seq int
	tok mqtt.Token
}

// Run connects to addr and publishes seq Last()+1, Last()+2, ... until
// count messages were published (0: no limit), ctx ends or the connection
// is lost; then it waits for the outstanding PUBACKs. Running it again
// continues the numbering on a new connection.
func (p *publisher) Run(ctx context.Context, addr string, count int) error {
	window := p.Window
	if window <= 0 {
		window = 16
	}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(p.ID).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetKeepAlive(30 * time.Second).
		// A Publish racing a lost connection blocks for the write timeout
		// (paho), so keep it short: the kill test waits for it.
		SetWriteTimeout(3 * time.Second).SetOrderMatters(true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		err := fmt.Errorf("connecting %s: %v", p.ID, tok.Error())
		p.setErr(err)
		return err
	}
	defer c.Disconnect(100)
	topic := "dev/" + p.ID
	var inflight []pending
	var runErr error
	wait := func(pd pending) {
		if !pd.tok.WaitTimeout(60 * time.Second) {
			if runErr == nil {
				runErr = fmt.Errorf("%s seq %d: no PUBACK within 60s", p.ID, pd.seq)
			}
			return
		}
		if err := pd.tok.Error(); err != nil {
			if runErr == nil {
				runErr = fmt.Errorf("%s seq %d: %w", p.ID, pd.seq, err)
			}
			return
		}
		p.mu.Lock()
		p.ackedSeq = append(p.ackedSeq, pd.seq)
		p.mu.Unlock()
		p.acked.Add(1)
	}
	for n := 0; (count == 0 || n < count) && runErr == nil && ctx.Err() == nil && c.IsConnectionOpen(); n++ {
		p.mu.Lock()
		p.last++
		seq := p.last
		p.mu.Unlock()
		payload, _ := json.Marshal(msgID{Client: p.ID, Seq: seq})
		inflight = append(inflight, pending{seq, c.Publish(topic, 1, false, payload)})
		if len(inflight) >= window {
			wait(inflight[0])
			inflight = inflight[1:]
		}
		if p.Pause > 0 {
			select {
			case <-time.After(p.Pause):
			case <-ctx.Done():
			}
		}
	}
	for _, pd := range inflight {
		wait(pd)
	}
	if runErr == nil && ctx.Err() == nil && !c.IsConnectionOpen() {
		runErr = fmt.Errorf("%s: connection lost", p.ID)
	}
	p.setErr(runErr)
	return runErr
}

func (p *publisher) setErr(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// fleet is a set of publishers run together.
type fleet []*publisher

func newFleet(prefix string, n int) fleet {
	f := make(fleet, n)
	for i := range f {
		f[i] = &publisher{ID: fmt.Sprintf("%s-%d", prefix, i)}
	}
	return f
}

// Start runs every publisher in its own goroutine; wait blocks until all
// returned.
func (f fleet) Start(ctx context.Context, addr string, count int) (wait func()) {
	var wg sync.WaitGroup
	for _, p := range f {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Run(ctx, addr, count)
		}()
	}
	return wg.Wait
}

// Acked sums the acknowledged messages.
func (f fleet) Acked() int64 {
	var n int64
	for _, p := range f {
		n += p.Acked()
	}
	return n
}

// AckedSeqs maps each publisher to its acknowledged sequence numbers.
func (f fleet) AckedSeqs() map[string][]int {
	m := map[string][]int{}
	for _, p := range f {
		m[p.ID] = p.AckedSeqs()
	}
	return m
}
