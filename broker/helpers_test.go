package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

// startServer runs a broker on a free loopback port until the test ends.
func startServer(t testing.TB, mut func(*Config), opts Options) (*Server, string) {
	t.Helper()
	return startServerWith(t, mut, opts, nil)
}

// startServerWith is startServer with a hook run on the Server before Serve.
func startServerWith(t testing.TB, mut func(*Config), opts Options, hook func(*Server)) (*Server, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = time.Second
	cfg.SysInterval = 0 // tests that count retained messages; TestSysTopics opts in
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if hook != nil {
		hook(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return s, s.Addrs()["test"].String()
}

// v3Client connects a paho 3.1.1 client.
func v3Client(t testing.TB, addr, id string, clean bool, onLost func(error)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).SetKeepAlive(30 * time.Second)
	if onLost != nil {
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { onLost(err) })
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("v3 connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(100)
		}
	})
	return c
}

// v5Client connects a paho v5 client. cp may be nil for defaults.
func v5Client(t testing.TB, addr string, cfg paho.ClientConfig, cp *paho.Connect) (*paho.Client, *paho.Connack) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	cfg.Conn = nc
	c := paho.NewClient(cfg)
	if cp == nil {
		cp = &paho.Connect{KeepAlive: 30, CleanStart: true}
	}
	cp.ClientID = cfg.ClientID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("v5 connect %s: %v", cfg.ClientID, err)
	}
	t.Cleanup(func() {
		c.Disconnect(&paho.Disconnect{})
		nc.Close()
	})
	return c, ca
}

// collector gathers received messages for assertions.
type msgLog struct {
	mu   sync.Mutex
	msgs []received
	ch   chan struct{}
}

type received struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Dup     bool
	Props   *paho.PublishProperties
}

func newMsgLog() *msgLog { return &msgLog{ch: make(chan struct{}, 1)} }

func (l *msgLog) add(r received) {
	l.mu.Lock()
	l.msgs = append(l.msgs, r)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// wait blocks until n messages arrived or the timeout passes.
func (l *msgLog) wait(t testing.TB, n int, timeout time.Duration) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		if len(l.msgs) >= n {
			out := append([]received(nil), l.msgs...)
			l.mu.Unlock()
			return out
		}
		got := len(l.msgs)
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", got, n)
		}
	}
}

func (l *msgLog) snapshot() []received {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]received(nil), l.msgs...)
}

func (l *msgLog) v3Handler(_ mqtt.Client, m mqtt.Message) {
	l.add(received{Topic: m.Topic(), Payload: string(m.Payload()), QoS: m.Qos(), Retain: m.Retained(), Dup: m.Duplicate()})
}

func (l *msgLog) v5Handler(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	l.add(received{Topic: p.Topic, Payload: string(p.Payload), QoS: p.QoS, Retain: p.Retain, Dup: p.Duplicate(), Props: p.Properties})
	return true, nil
}

// rawClient speaks MQTT through the packet codec for protocol edge cases.
type rawClient struct {
	t       testing.TB
	nc      net.Conn
	r       *packet.Reader
	version byte
}

func dialRaw(t testing.TB, addr string, version byte) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	r := packet.NewReader(nc, 0)
	r.SetVersion(version)
	return &rawClient{t: t, nc: nc, r: r, version: version}
}

// connect sends CONNECT and returns the CONNACK.
func (c *rawClient) connect(cp *packet.Connect) *packet.Connack {
	c.t.Helper()
	cp.Version = c.version
	if cp.ProtocolName == nil {
		cp.ProtocolName = []byte("MQTT")
	}
	c.send(cp)
	p := c.read(5 * time.Second)
	ca, ok := p.(*packet.Connack)
	if !ok {
		c.t.Fatalf("got %T, want CONNACK", p)
	}
	cp2 := *ca
	return &cp2
}

func (c *rawClient) send(p packet.Packet) {
	c.t.Helper()
	b, err := packet.Append(nil, p, c.version)
	if err != nil {
		c.t.Fatalf("encoding %T: %v", p, err)
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("writing %T: %v", p, err)
	}
}

// read returns the next packet; it fails the test on error or timeout.
func (c *rawClient) read(timeout time.Duration) packet.Packet {
	c.t.Helper()
	p, err := c.tryRead(timeout)
	if err != nil {
		c.t.Fatalf("reading packet: %v", err)
	}
	return p
}

func (c *rawClient) tryRead(timeout time.Duration) (packet.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	return c.r.ReadPacket()
}

// expectClosed asserts the server closes the connection, optionally
// after a DISCONNECT with code (code < 0: no DISCONNECT expected).
func (c *rawClient) expectClosed(code int) {
	c.t.Helper()
	for {
		p, err := c.tryRead(5 * time.Second)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.t.Fatalf("connection not closed")
			}
			if code >= 0 {
				c.t.Fatalf("closed without DISCONNECT 0x%02x", code)
			}
			return
		}
		if d, ok := p.(*packet.Disconnect); ok {
			if code < 0 || d.ReasonCode != packet.ReasonCode(code) {
				c.t.Fatalf("got DISCONNECT 0x%02x, want %d", byte(d.ReasonCode), code)
			}
			code = -1
			continue
		}
	}
}

// expectNothing asserts no packet arrives within d.
func (c *rawClient) expectNothing(d time.Duration) {
	c.t.Helper()
	p, err := c.tryRead(d)
	if err == nil {
		c.t.Fatalf("unexpected %T %+v", p, p)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("unexpected error %v", err)
	}
}

func (c *rawClient) publish(topic string, qos byte, pid uint16, payload string) {
	c.t.Helper()
	c.send(&packet.Publish{Topic: []byte(topic), QoS: qos, PacketID: pid, Payload: []byte(payload)})
}

// expectAck reads the next packet and checks it is the given ack.
func (c *rawClient) expectAck(kind packet.Type, pid uint16, code packet.ReasonCode) {
	c.t.Helper()
	p := c.read(5 * time.Second)
	a, ok := p.(*packet.Ack)
	if !ok || a.Kind != kind || a.PacketID != pid || a.ReasonCode != code {
		c.t.Fatalf("got %T %+v, want %v id %d code 0x%02x", p, p, kind, pid, byte(code))
	}
}
