// Package e2e runs the command path end to end with real peers: a Kafka
// record produced to kfake, the Kafka command source, the command
// service and the embedded broker, MQTT 5 devices (paho.golang) that
// receive, acknowledge and answer, and status events read back from a
// Kafka topic written by the Kafka sink.
package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/broker/command/kafkasource"
	"github.com/sluicehq/sluice/broker/command/status"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/sinks/kafka"
)

const (
	commandsTopic = "commands"
	statusTopic   = "command-status"
)

// stack is Kafka (kfake), the broker, the command service, its Kafka
// status sink and the Kafka command source, all in this process.
type stack struct {
	kafka  string // Kafka address
	mqtt   string // MQTT address
	srv    *broker.Server
	svc    *command.Service
	src    *kafkasource.Source
	reg    *prometheus.Registry
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// startStack starts everything; partitions is the partition count of the
// commands topic. It stops when the test ends.
func startStack(t testing.TB, partitions int32, mutSrc func(*kafkasource.Config)) *stack {
	t.Helper()
	log := testLogger()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, commandsTopic), kfake.SeedTopics(3, statusTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	st := &stack{kafka: kc.ListenAddrs()[0], reg: prometheus.NewRegistry()}

	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.Topic = []string{st.kafka}, statusTopic
	ksink, err := kafka.New(kcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ksink.Close() })
	events := status.New(ksink, statusTopic, status.Options{Name: "kafka-status", Logger: log})

	ccfg := command.DefaultConfig()
	ccfg.Enabled = true
	ccfg.Dir = filepath.Join(t.TempDir(), "commands")
	ccfg.ACL = []auth.ACLRule{{Permission: "allow", Action: "publish", Topic: "devices/%c/commands", Users: []string{"kafka:" + commandsTopic}}}
	if st.svc, err = command.New(ccfg, command.Options{Logger: log, Registerer: st.reg, Sinks: map[string]command.EventSink{"kafka-status": events}}); err != nil {
		t.Fatal(err)
	}

	bcfg := broker.DefaultConfig()
	bcfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	bcfg.ShutdownTimeout = time.Second
	bcfg.SysInterval = 0
	if st.srv, err = broker.New(bcfg, broker.Options{Logger: log, Tracker: st.svc, Consumer: st.svc.Tap(nil)}); err != nil {
		t.Fatal(err)
	}
	if err := st.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	st.mqtt = st.srv.Addrs()["test"].String()

	scfg := kafkasource.DefaultConfig()
	scfg.Enabled, scfg.Brokers, scfg.Topics = true, []string{st.kafka}, []string{commandsTopic}
	scfg.MaxWait = 100 * time.Millisecond
	if mutSrc != nil {
		mutSrc(&scfg)
	}
	if st.src, err = kafkasource.New(scfg, st.svc, kafkasource.Options{Logger: log, Registerer: st.reg}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	st.wg.Go(func() {
		if err := st.srv.Serve(ctx); err != nil {
			t.Errorf("broker Serve: %v", err)
		}
	})
	st.wg.Go(func() {
		if err := st.svc.Run(ctx, st.srv); err != nil {
			t.Errorf("command service Run: %v", err)
		}
	})
	st.wg.Go(func() {
		if err := st.src.Run(ctx); err != nil {
			t.Errorf("kafka source Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		st.wg.Wait()
	})
	return st
}

// device is an MQTT 5 client subscribed to its command topic. It answers
// every command on the command's response topic with the command's
// correlation data, after a pause (a device doing the work), so that its
// PUBACK is on the wire before the answer.
type device struct {
	id    string
	c     *paho.Client
	got   chan *paho.Publish
	reply func(p *paho.Publish) []byte // nil: no answer
	wg    sync.WaitGroup
	stop  chan struct{}
}

func connectDevice(t testing.TB, addr, id string, reply func(p *paho.Publish) []byte, onPublish func(*paho.Publish)) *device {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &device{id: id, got: make(chan *paho.Publish, 64), reply: reply, stop: make(chan struct{})}
	d.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if onPublish != nil {
				onPublish(pr.Packet)
			}
			select {
			case d.got <- pr.Packet:
			default:
				t.Errorf("device %s: receive buffer full", id)
			}
			return true, nil
		}},
		OnClientError: func(err error) {
			select {
			case <-d.stop:
			default:
				t.Logf("device %s: %v", id, err)
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}); err != nil {
		t.Fatalf("connecting device %s: %v", id, err)
	}
	if _, err := d.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/" + id + "/commands", QoS: 1}}}); err != nil {
		t.Fatalf("subscribing device %s: %v", id, err)
	}
	if reply != nil {
		d.wg.Go(d.answer)
	}
	t.Cleanup(d.close)
	return d
}

// answer replies to each command the device received.
func (d *device) answer() {
	for {
		select {
		case <-d.stop:
			return
		case p := <-d.got:
			time.Sleep(50 * time.Millisecond)
			if p.Properties == nil || p.Properties.ResponseTopic == "" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = d.c.Publish(ctx, &paho.Publish{
				Topic: p.Properties.ResponseTopic, QoS: 1, Payload: d.reply(p),
				Properties: &paho.PublishProperties{CorrelationData: p.Properties.CorrelationData},
			})
			cancel()
		}
	}
}

func (d *device) close() {
	select {
	case <-d.stop:
		return
	default:
	}
	close(d.stop)
	d.wg.Wait()
	_ = d.c.Disconnect(&paho.Disconnect{})
}

// producer writes records to Kafka with a real producer (franz-go).
func newProducer(t testing.TB, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(commandsTopic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// statusReader reads status events back from the status topic.
type statusReader struct {
	cl  *kgo.Client
	evs map[string][]command.Event
}

func newStatusReader(t testing.TB, addr string) *statusReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(statusTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &statusReader{cl: cl, evs: map[string][]command.Event{}}
}

// until reads events until done reports true or ctx ends.
func (r *statusReader) until(ctx context.Context, t testing.TB, done func(map[string][]command.Event) bool) {
	t.Helper()
	for !done(r.evs) {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(rec *kgo.Record) {
			var ev command.Event
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				t.Errorf("status record %q: %v", rec.Value, err)
				return
			}
			if string(rec.Key) != ev.ID {
				t.Errorf("status record key %q, want the command id %q", rec.Key, ev.ID)
			}
			r.evs[ev.ID] = append(r.evs[ev.ID], ev)
		})
	}
}

func states(evs []command.Event) []command.State {
	out := make([]command.State, len(evs))
	for i, e := range evs {
		out[i] = e.State
	}
	return out
}
