package packet

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lookPeer finds a mosquitto client binary; a missing peer fails under
// CI=true and skips otherwise.
func lookPeer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// peerConn runs a real MQTT client against a one-connection listener and
// returns the accepted connection with a Reader on it.
func peerConn(t *testing.T, ctx context.Context, bin string, args ...string) (net.Conn, *Reader, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn, NewReader(conn, 0), cmd, &out
}

func send(t *testing.T, conn net.Conn, p Packet, version byte) {
	t.Helper()
	b, err := Append(nil, p, version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func expect[T Packet](t *testing.T, r *Reader) T {
	t.Helper()
	p, err := r.ReadPacket()
	if err != nil {
		t.Fatalf("ReadPacket: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		t.Fatalf("got %T %+v, want %T", p, p, v)
	}
	return v
}

// TestMosquittoPub decodes what the real mosquitto_pub sends (CONNECT with
// credentials and will, a QoS 2 PUBLISH with v5 properties) and drives the
// QoS 2 flow with packets we encode.
func TestMosquittoPub(t *testing.T) {
	bin := lookPeer(t, "mosquitto_pub")
	for _, v := range []struct {
		flag    string
		version byte
	}{{"mqttv31", Version31}, {"mqttv311", Version311}, {"mqttv5", Version5}} {
		t.Run(v.flag, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			args := []string{"-V", v.flag, "-i", "pub-1", "-u", "user", "-P", "secret", "-q", "2", "-r",
				"-t", "sensors/é/temp", "-m", "21.5", "--will-topic", "status/pub-1", "--will-payload", "gone", "--will-qos", "1"}
			if v.version == Version5 {
				args = append(args, "-D", "publish", "user-property", "k", "v", "-D", "publish", "content-type", "text/plain",
					"-D", "connect", "session-expiry-interval", "30")
			}
			conn, r, cmd, out := peerConn(t, ctx, bin, args...)
			c := expect[*Connect](t, r)
			if c.Version != v.version || string(c.ClientID) != "pub-1" || string(c.Username) != "user" ||
				string(c.Password) != "secret" || !c.WillFlag || c.WillQoS != 1 || string(c.WillTopic) != "status/pub-1" ||
				string(c.WillPayload) != "gone" {
				t.Fatalf("CONNECT %+v", c)
			}
			if v.version == Version5 && (!c.Props.Has(PropSessionExpiry) || c.Props.SessionExpiry != 30) {
				t.Fatalf("CONNECT properties %+v", c.Props)
			}
			send(t, conn, &Connack{}, v.version)
			p := expect[*Publish](t, r)
			if p.QoS != 2 || !p.Retain || string(p.Topic) != "sensors/é/temp" || string(p.Payload) != "21.5" || p.PacketID == 0 {
				t.Fatalf("PUBLISH %+v", p)
			}
			if v.version == Version5 && (len(p.Props.User) != 1 || string(p.Props.User[0].Name) != "k" ||
				string(p.Props.ContentType) != "text/plain") {
				t.Fatalf("PUBLISH properties %+v", p.Props)
			}
			id := p.PacketID
			send(t, conn, &Ack{Kind: PUBREC, PacketID: id}, v.version)
			if a := expect[*Ack](t, r); a.Kind != PUBREL || a.PacketID != id {
				t.Fatalf("got %+v, want PUBREL %d", a, id)
			}
			send(t, conn, &Ack{Kind: PUBCOMP, PacketID: id}, v.version)
			expect[*Disconnect](t, r)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("mosquitto_pub: %v\n%s", err, out)
			}
		})
	}
}

// TestMosquittoSub checks that mosquitto_sub accepts our CONNACK, SUBACK
// and PUBLISH encodings and prints the message we deliver.
func TestMosquittoSub(t *testing.T) {
	bin := lookPeer(t, "mosquitto_sub")
	for _, v := range []struct {
		flag    string
		version byte
	}{{"mqttv311", Version311}, {"mqttv5", Version5}} {
		t.Run(v.flag, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			conn, r, cmd, out := peerConn(t, ctx, bin, "-V", v.flag, "-i", "sub-1", "-q", "1", "-t", "a/+", "-C", "1", "-F", "%t %p %q")
			expect[*Connect](t, r)
			send(t, conn, &Connack{Props: Properties{Present: PropReceiveMaximum | PropTopicAliasMaximum,
				ReceiveMaximum: 10, TopicAliasMaximum: 4}}, v.version)
			s := expect[*Subscribe](t, r)
			if len(s.Subs) != 1 || string(s.Subs[0].Filter) != "a/+" || s.Subs[0].QoS != 1 {
				t.Fatalf("SUBSCRIBE %+v", s)
			}
			send(t, conn, &Suback{PacketID: s.PacketID, Codes: []ReasonCode{GrantedQoS1}}, v.version)
			send(t, conn, &Publish{QoS: 1, PacketID: 5, Topic: b("a/b"), Payload: b("hello"),
				Props: Properties{Present: PropMessageExpiry, MessageExpiry: 60}}, v.version)
			if a := expect[*Ack](t, r); a.Kind != PUBACK || a.PacketID != 5 {
				t.Fatalf("got %+v, want PUBACK 5", a)
			}
			if v.version == Version5 {
				send(t, conn, &Disconnect{ReasonCode: ServerShuttingDown}, v.version)
			} else {
				conn.Close()
			}
			_ = cmd.Wait() // exits after -C 1 (status depends on who closed first)
			if got := strings.TrimSpace(out.String()); got != "a/b hello 1" {
				t.Fatalf("mosquitto_sub printed %q", got)
			}
		})
	}
}
