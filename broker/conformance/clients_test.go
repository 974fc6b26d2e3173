package conformance

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

var seq atomic.Int64

// Timeouts. "wait" bounds how long a test waits for something that must
// happen; "quiet" is how long it watches for something that must not.
const (
	wait  = 3 * time.Second
	quiet = 300 * time.Millisecond
)

// msg is a received application message, whichever client got it.
type msg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Dup     bool
	Props   *paho.PublishProperties // v5 only
}

// inbox collects received messages. It is bounded: a test that overflows
// it fails instead of blocking the client.
type inbox struct {
	t  testing.TB
	ch chan msg
}

func newInbox(t testing.TB) *inbox { return &inbox{t: t, ch: make(chan msg, 4096)} }

func (in *inbox) put(m msg) {
	select {
	case in.ch <- m:
	default:
		in.t.Errorf("inbox overflow: more than %d undelivered messages", cap(in.ch))
	}
}

// next waits for the next message.
func (in *inbox) next(t testing.TB) msg {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(wait):
		t.Fatalf("no message arrived within %v", wait)
		return msg{}
	}
}

// none fails if a message arrives within d.
func (in *inbox) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-in.ch:
		t.Fatalf("unexpected message: topic=%q payload=%q qos=%d retain=%v", m.Topic, m.Payload, m.QoS, m.Retain)
	case <-time.After(d):
	}
}

// collect gathers messages until n have arrived or wait passes.
func (in *inbox) collect(n int, d time.Duration) []msg {
	var out []msg
	deadline := time.After(d)
	for len(out) < n {
		select {
		case m := <-in.ch:
			out = append(out, m)
		case <-deadline:
			return out
		}
	}
	return out
}

// v3Client is a paho.mqtt.golang (MQTT 3.1.1) client.
type v3Client struct {
	mqtt.Client
	in *inbox
}

// newV3 connects a 3.1.1 client; configure may adjust the options (will,
// clean session, keepalive). Auto-reconnect is off.
func newV3(t *testing.T, s *server, id string, configure func(*mqtt.ClientOptions)) *v3Client {
	t.Helper()
	c, err := dialV3(t, s, id, configure)
	if err != nil {
		t.Fatalf("3.1.1 connect %s: %v", id, err)
	}
	return c
}

func dialV3(t *testing.T, s *server, id string, configure func(*mqtt.ClientOptions)) (*v3Client, error) {
	in := newInbox(t)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + s.addr).SetClientID(id).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(wait).SetProtocolVersion(4).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			in.put(msg{Topic: m.Topic(), Payload: string(m.Payload()), QoS: m.Qos(), Retain: m.Retained(), Dup: m.Duplicate()})
		})
	if configure != nil {
		configure(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, context.DeadlineExceeded
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return &v3Client{Client: c, in: in}, nil
}

// sub subscribes and fails unless the broker grants a QoS.
func (c *v3Client) sub(t *testing.T, filter string, qos byte) {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %q: %v", filter, tok.Error())
	}
	st := tok.(*mqtt.SubscribeToken)
	if got := st.Result()[filter]; got > 2 {
		t.Fatalf("subscribe %q: SUBACK return code 0x%02x, want a granted QoS", filter, got)
	}
}

// pub publishes and waits for the flow to complete.
func (c *v3Client) pub(t *testing.T, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %q at QoS %d: %v", topic, qos, tok.Error())
	}
}

// v5Client is a paho.golang (MQTT 5) client.
type v5Client struct {
	*paho.Client
	conn   net.Conn
	in     *inbox
	ack    *paho.Connack
	discMu sync.Mutex
	disc   *paho.Disconnect // DISCONNECT received from the server, if any
}

// newV5 connects a v5 client with cp (ClientID, CleanStart, KeepAlive and
// properties as given; KeepAlive 0 is replaced by 30). It fails the test
// unless the CONNACK reports success.
func newV5(t *testing.T, s *server, cp *paho.Connect) *v5Client {
	t.Helper()
	c, ack, err := dialV5(t, s, cp)
	if err != nil {
		t.Fatalf("v5 connect %s: %v", cp.ClientID, err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("v5 connect %s: CONNACK reason 0x%02x", cp.ClientID, ack.ReasonCode)
	}
	return c
}

func dialV5(t *testing.T, s *server, cp *paho.Connect) (*v5Client, *paho.Connack, error) {
	conn, err := net.DialTimeout("tcp", s.addr, wait)
	if err != nil {
		return nil, nil, err
	}
	c := &v5Client{conn: conn, in: newInbox(t)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: cp.ClientID,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			p := pr.Packet
			c.in.put(msg{Topic: p.Topic, Payload: string(p.Payload), QoS: p.QoS, Retain: p.Retain, Dup: p.Duplicate(), Props: p.Properties})
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.discMu.Lock()
			c.disc = d
			c.discMu.Unlock()
		},
		OnClientError: func(error) {},
		PacketTimeout: wait,
	})
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, ack, err
	}
	c.ack = ack
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		conn.Close()
		select {
		case <-c.Done():
		case <-time.After(wait):
		}
	})
	return c, ack, nil
}

// serverDisconnect returns the DISCONNECT the server sent, if any.
func (c *v5Client) serverDisconnect() *paho.Disconnect {
	c.discMu.Lock()
	defer c.discMu.Unlock()
	return c.disc
}

// sub subscribes with the given options and fails unless granted.
func (c *v5Client) sub(t *testing.T, props *paho.SubscribeProperties, subs ...paho.SubscribeOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Subscribe(ctx, &paho.Subscribe{Properties: props, Subscriptions: subs})
	if err != nil {
		t.Fatalf("subscribe %v: %v", subs, err)
	}
	for i, rc := range ack.Reasons {
		if rc > 2 {
			t.Fatalf("subscribe %q: SUBACK reason 0x%02x", subs[i].Topic, rc)
		}
	}
}

// pub publishes p and waits for its flow to complete, failing on error.
func (c *v5Client) pub(t *testing.T, p *paho.Publish) *paho.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Publish(ctx, p)
	if err != nil {
		t.Fatalf("publish %q at QoS %d: %v", p.Topic, p.QoS, err)
	}
	return r
}

// kill closes the TCP connection without DISCONNECT.
func (c *v5Client) kill() { c.conn.Close() }

// mosquittoSub runs mosquitto_sub with args (host and port are added)
// and streams its output lines. Pass -v to get "topic payload" lines.
func mosquittoSub(t *testing.T, s *server, args ...string) <-chan string {
	t.Helper()
	bin := requireTool(t, "mosquitto_sub")
	host, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command(bin, append([]string{"-h", host, "-p", port}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("piping mosquitto_sub: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("running mosquitto_sub: %v", err)
	}
	out := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case out <- sc.Text():
			default: // bounded: a test never needs more than 1024 lines
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() && errb.Len() > 0 {
			t.Logf("mosquitto_sub stderr: %s", errb.String())
		}
	})
	return out
}

// awaitLine waits for the next line from a mosquittoSub stream.
func awaitLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("mosquitto_sub exited before printing the expected line")
		}
		return l
	case <-time.After(wait):
		t.Fatalf("mosquitto_sub printed nothing within %v", wait)
		return ""
	}
}

// awaitSubscribed publishes probes to probeTopic until the mosquitto_sub
// stream (started with -v and subscribed to probeTopic) prints one, which
// proves its subscription is in place. Later probe lines are drained by
// skipProbes.
func awaitSubscribed(t *testing.T, s *server, lines <-chan string, probeTopic string) {
	t.Helper()
	pub := newV3(t, s, uniq("probe"), nil)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		pub.pub(t, probeTopic, 0, false, "probe")
		select {
		case l := <-lines:
			if strings.HasPrefix(l, probeTopic+" ") {
				pub.Disconnect(0)
				return
			}
			t.Fatalf("mosquitto_sub printed %q before its probe", l)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("mosquitto_sub did not subscribe in time")
}

// skipProbes returns the next non-probe line.
func skipProbes(t *testing.T, lines <-chan string, probeTopic string) string {
	t.Helper()
	for {
		l := awaitLine(t, lines)
		if !strings.HasPrefix(l, probeTopic+" ") {
			return l
		}
	}
}

// mosquittoPub runs mosquitto_pub to completion and fails on error.
func mosquittoPub(t *testing.T, s *server, args ...string) {
	t.Helper()
	bin := requireTool(t, "mosquitto_pub")
	host, port, _ := net.SplitHostPort(s.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v: %s", args, err, out)
	}
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install mosquitto-clients): %v", name, err)
	}
	return p
}

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }
func b8(v byte) *byte      { return &v }

func itoa(n int) string { return strconv.Itoa(n) }

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
