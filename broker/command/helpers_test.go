package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/store"
)

const (
	testToken  = "token-plant-0123456789"
	adminToken = "admin-token-0123456789"
)

// recSink records status events.
type recSink struct {
	mu   sync.Mutex
	evs  []Event
	fail int // fail this many calls first
	ch   chan struct{}
}

func newRecSink() *recSink { return &recSink{ch: make(chan struct{}, 1)} }

func (r *recSink) PublishEvents(_ context.Context, evs []Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errTestSink
	}
	r.evs = append(r.evs, evs...)
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return nil
}

var errTestSink = errors.New("test sink down")

// states lists the states of id's events, in order received.
func (r *recSink) states(id string) []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []State
	for _, e := range r.evs {
		if e.ID == id {
			out = append(out, e.State)
		}
	}
	return out
}

// harness is a broker, a command service and an HTTP server.
type harness struct {
	t      *testing.T
	srv    *broker.Server
	svc    *Service
	addr   string
	http   *httptest.Server
	sink   *recSink
	cancel context.CancelFunc
	wg     sync.WaitGroup
	disk   *store.Disk
}

// start runs everything with the command store (and, if persist, the
// broker's session store) in dir.
func start(t *testing.T, dir string, persist bool, sink *recSink, mut func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Dir = filepath.Join(dir, "commands")
	cfg.Tokens = []TokenConfig{{Name: "plant", Token: testToken, Allow: []string{"devices/+/commands", "plant/#"}}}
	if mut != nil {
		mut(&cfg)
	}
	if sink == nil {
		sink = newRecSink()
	}
	svc, err := New(cfg, Options{Sinks: map[string]EventSink{"test": sink}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{t: t, svc: svc, sink: sink}
	bcfg := broker.DefaultConfig()
	bcfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	bcfg.ShutdownTimeout = time.Second
	bcfg.SysInterval = 0
	opts := broker.Options{Tracker: svc, Consumer: svc.Tap(nil)}
	if persist {
		if h.disk, err = store.Open(filepath.Join(dir, "broker")); err != nil {
			t.Fatal(err)
		}
		opts.Store = h.disk
	}
	if h.srv, err = broker.New(bcfg, opts); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	h.addr = h.srv.Addrs()["test"].String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.wg.Go(func() {
		if err := h.srv.Serve(ctx); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.wg.Go(func() {
		if err := svc.Run(ctx, h.srv); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	h.http = httptest.NewServer(svc.Handler(adminToken))
	deadline := time.Now().Add(5 * time.Second)
	for svc.b.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("service did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(h.stop)
	return h
}

// stop shuts everything down (idempotent).
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.http.Close()
	h.cancel()
	h.wg.Wait()
	h.cancel = nil
	if h.disk != nil {
		h.disk.Close()
	}
}

// post submits a command through the API.
func (h *harness) post(token string, body map[string]any) (int, map[string]any) {
	h.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/api/v1/commands", bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.do(req)
}

func (h *harness) get(token, path string) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.http.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) (int, map[string]any) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitState waits until command id reaches state.
func (h *harness) waitState(id string, want State) Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok, err := h.svc.Get(id)
		if err == nil && ok && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("command %s: state %q (%s), want %q", id, st.State, st.Reason, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEvents waits until the sink has n events of id and returns their
// states.
func (h *harness) waitEvents(id string, n int) []State {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := h.sink.states(id)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("command %s: events %v, want %d", id, got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// msgs collects what a device receives.
type msgs struct {
	mu  sync.Mutex
	got []mqtt.Message
}

func (m *msgs) handler(_ mqtt.Client, msg mqtt.Message) {
	m.mu.Lock()
	m.got = append(m.got, msg)
	m.mu.Unlock()
}

func (m *msgs) payloads() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(m.got))
	for i, x := range m.got {
		out[i] = string(x.Payload())
	}
	return out
}

func (m *msgs) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := m.payloads()
		if len(p) >= n {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("device got %d messages %q, want %d", len(p), p, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// device connects a 3.1.1 device subscribed to its command topic.
func device(t *testing.T, addr, id string, clean bool, m *msgs) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetOrderMatters(true).SetKeepAlive(30 * time.Second)
	o.SetDefaultPublishHandler(m.handler)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	if tok := c.Subscribe("devices/"+id+"/commands", 1, m.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", id, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(50)
		}
	})
	return c
}

// device5 connects an MQTT 5 device that answers every command on its
// response topic with its correlation data.
func device5(t *testing.T, addr, id, answer string) *paho.Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var c *paho.Client
	c = paho.NewClient(paho.ClientConfig{ClientID: id, Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			p := pr.Packet
			go func() {
				_, _ = c.Publish(context.Background(), &paho.Publish{Topic: p.Properties.ResponseTopic, QoS: 1,
					Payload:    []byte(answer),
					Properties: &paho.PublishProperties{CorrelationData: p.Properties.CorrelationData}})
			}()
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/" + id + "/commands", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		nc.Close()
	})
	return c
}

// disconnect disconnects a device and waits until the broker has
// detached its session.
func (h *harness) disconnect(c mqtt.Client, id string) {
	h.t.Helper()
	c.Disconnect(50)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, online := h.srv.Client(id); !online {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s still connected", id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
