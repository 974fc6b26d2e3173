package listener

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker/packet"
)

// mqttResponder is a minimal MQTT server over whatever l accepts: it
// answers CONNECT and SUBSCRIBE and echoes each PUBLISH to "out/<topic>",
// writing the packet in three pieces (three WebSocket frames), and a
// small one twice in one write (two packets in one frame).
type mqttResponder struct {
	mu    sync.Mutex
	infos []ConnInfo
	wg    sync.WaitGroup
}

func serveMQTT(t *testing.T, l *Listener) *mqttResponder {
	r := &mqttResponder{}
	t.Cleanup(r.wg.Wait)
	t.Cleanup(func() { l.Close() })
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.infos = append(r.infos, Info(c))
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.Close()
				if err := r.serve(c); err != nil && err != io.EOF {
					t.Logf("responder: %v", err)
				}
			}()
		}
	}()
	return r
}

func (r *mqttResponder) serve(c net.Conn) error {
	rd := packet.NewReader(c, 1<<20)
	version := packet.Version311
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			return err
		}
		var out []byte
		switch p := p.(type) {
		case *packet.Connect:
			version = p.Version
			rd.SetVersion(version)
			out, err = packet.Append(nil, &packet.Connack{}, version)
		case *packet.Subscribe:
			codes := make([]packet.ReasonCode, len(p.Subs))
			out, err = packet.Append(nil, &packet.Suback{PacketID: p.PacketID, Codes: codes}, version)
		case *packet.Publish:
			echo := &packet.Publish{Topic: append([]byte("out/"), p.Topic...), Payload: p.Payload}
			out, err = packet.Append(nil, echo, version)
			if err != nil {
				return err
			}
			if len(p.Payload) < 100 {
				out = append(out, out...) // two packets, one frame
				break
			}
			third := len(out) / 3
			if _, err := c.Write(out[:third]); err != nil {
				return err
			}
			if _, err := c.Write(out[third : 2*third]); err != nil {
				return err
			}
			out = out[2*third:]
		case *packet.Disconnect:
			return nil
		default:
			continue
		}
		if err != nil {
			return err
		}
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
}

func (r *mqttResponder) info(t *testing.T) ConnInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.infos) == 0 {
		t.Fatal("no connection accepted")
	}
	return r.infos[len(r.infos)-1]
}

// pahoRoundTrip connects with paho to url, subscribes to out/#, publishes
// a 300 KB and a small message and checks the echoes arrive intact.
func pahoRoundTrip(t *testing.T, url string, tc *tls.Config) {
	t.Helper()
	got := make(chan mqtt.Message, 8)
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("ws-test").SetTLSConfig(tc).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
	client := mqtt.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect to %s: %v", url, tok.Error())
	}
	defer client.Disconnect(100)
	if tok := client.Subscribe("out/#", 0, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	for _, m := range []struct {
		topic   string
		payload []byte
		copies  int
	}{{"in/big", big, 1}, {"in/small", []byte("hello"), 2}} {
		if tok := client.Publish(m.topic, 0, false, m.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		for range m.copies {
			select {
			case msg := <-got:
				if msg.Topic() != "out/"+m.topic || !bytes.Equal(msg.Payload(), m.payload) {
					t.Fatalf("got %s with %d bytes, want out/%s with %d", msg.Topic(), len(msg.Payload()), m.topic, len(m.payload))
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no echo of %s", m.topic)
			}
		}
	}
}

func TestWebSocketPaho(t *testing.T) {
	ca := newTestCA(t, "ca")
	tests := []struct {
		name   string
		cfg    Config
		scheme string
		tls    *tls.Config
	}{
		{"ws", Config{Type: WebSocket}, "ws", nil},
		{"ws custom path", Config{Type: WebSocket, WebSocket: WebSocketConfig{Path: "/broker/ws"}}, "ws", nil},
		{"wss", Config{Type: WebSocketTLS, TLS: serverFiles(t, ca, "server")}, "wss",
			&tls.Config{RootCAs: ca.pool, ServerName: "localhost"}},
		{"ws behind proxy", Config{Type: WebSocket, ProxyProtocol: true}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, tt.cfg)
			r := serveMQTT(t, l)
			addr := l.Addr().String()
			if tt.scheme == "" {
				// paho cannot send a PROXY header: a relay in front does.
				addr = proxyRelay(t, addr, "PROXY TCP4 198.51.100.9 10.0.0.1 4242 80\r\n")
				tt.scheme = "ws"
			}
			path := l.Config().WebSocket.Path
			pahoRoundTrip(t, tt.scheme+"://"+addr+path, tt.tls)
			info := r.info(t)
			if info.Transport != tt.cfg.Type || info.Subprotocol != "mqtt" || (info.TLS != nil) != (tt.cfg.Type == WebSocketTLS) {
				t.Errorf("Info = %+v", info)
			}
			if tt.cfg.ProxyProtocol && info.RemoteAddr.String() != "198.51.100.9:4242" {
				t.Errorf("RemoteAddr = %s, want the PROXY header's", info.RemoteAddr)
			}
		})
	}
}

// proxyRelay listens on a free port and relays each connection to
// target, prefixed with header. It returns its address.
func proxyRelay(t *testing.T, target, header string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			io.WriteString(up, header)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// upgradeRequest is a valid upgrade request for path with extra headers.
func upgradeRequest(method, path string, headers ...string) string {
	h := map[string]string{
		"Host": "localhost", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Protocol": "mqtt",
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, path)
	for k, v := range h {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestWebSocketUpgrade(t *testing.T) {
	tests := []struct {
		name     string
		req      string
		status   int    // 0: closed without a response
		protocol string // on 101
	}{
		{"valid", upgradeRequest("GET", "/mqtt"), 101, "mqtt"},
		{"query string", upgradeRequest("GET", "/mqtt?client=1"), 101, "mqtt"},
		{"mqttv3.1", upgradeRequest("GET", "/mqtt", "Sec-WebSocket-Protocol", "mqttv3.1"), 101, "mqttv3.1"},
		{"first acceptable offer", upgradeRequest("GET", "/mqtt", "Sec-WebSocket-Protocol", "wamp, mqttv3.1, mqtt"), 101, "mqttv3.1"},
		{"no subprotocol", upgradeRequest("GET", "/mqtt", "Sec-WebSocket-Protocol", ""), 400, ""},
		{"other subprotocol", upgradeRequest("GET", "/mqtt", "Sec-WebSocket-Protocol", "chat"), 400, ""},
		{"wrong path", upgradeRequest("GET", "/ws"), 404, ""},
		{"post", upgradeRequest("POST", "/mqtt"), 405, ""},
		{"old version", upgradeRequest("GET", "/mqtt", "Sec-WebSocket-Version", "8"), 426, ""},
		{"short key", upgradeRequest("GET", "/mqtt", "Sec-WebSocket-Key", "c2hvcnQ="), 400, ""},
		{"no upgrade header", upgradeRequest("GET", "/mqtt", "Upgrade", ""), 400, ""},
		{"plain http", "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"mqtt instead of http", "\x10\x12\x00\x04MQTT\x04\x02\x00\x3c\x00\x06client", 0, ""},
		{"huge headers", "GET /mqtt HTTP/1.1\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, Config{Type: WebSocket})
			c := dial(t, l)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tt.req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if tt.status == 0 {
				if err == nil {
					t.Fatalf("got %s, want the connection closed", resp.Status)
				}
			} else {
				if err != nil {
					t.Fatalf("reading response: %v", err)
				}
				if resp.StatusCode != tt.status {
					t.Fatalf("status %s, want %d", resp.Status, tt.status)
				}
			}
			if tt.status != 101 {
				expectClosed(t, c, 5*time.Second)
				waitFor(t, "the failure to be counted", func() bool { return l.Stats().Failed["websocket"] == 1 })
				return
			}
			if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Errorf("Sec-WebSocket-Accept = %q", got) // RFC 6455 section 1.3's example
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.protocol {
				t.Errorf("subprotocol %q, want %q", got, tt.protocol)
			}
			if info := Info(accept(t, l)); info.Subprotocol != tt.protocol || info.Transport != WebSocket {
				t.Errorf("Info = %+v", info)
			}
		})
	}
}

// TestWebSocketEarlyData sends a frame in the same write as the upgrade
// request: the bytes the HTTP parser read ahead reach the stream.
func TestWebSocketEarlyData(t *testing.T) {
	l := listen(t, Config{Type: WebSocket})
	c := dial(t, l)
	req := upgradeRequest("GET", "/mqtt")
	frame := clientFrame(true, opBinary, []byte("early"))
	c.Write(append([]byte(req), frame...))
	sc := accept(t, l)
	buf := make([]byte, 5)
	sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "early" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
