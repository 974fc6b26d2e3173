package e2e

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// fleet is a set of light MQTT 5 devices: each is a bare TCP connection
// with the broker's packet codec and one reader goroutine that
// acknowledges every command. Unlike paho.golang (a 65,535-slot receive
// channel per client), a device holds a few KiB, so 1,000 of them barely
// touch the test process's heap and GC.
type fleet struct {
	onCommand func(payload []byte, at time.Time) // must not keep payload

	mu      sync.Mutex
	conns   []net.Conn
	closing bool
	errs    int
	first   error
	wg      sync.WaitGroup
}

// connect dials addr as client id, subscribes to the device's command
// topic at QoS 1 and starts its reader. The reader runs until close.
func (f *fleet) connect(addr, id string) error {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dialling %s: %w", addr, err)
	}
	r := packet.NewReader(nc, 0)
	r.SetVersion(packet.Version5)
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	cp := &packet.Connect{ProtocolName: []byte("MQTT"), Version: packet.Version5, CleanStart: true, KeepAlive: 600, ClientID: []byte(id)}
	if err := send(nc, nil, cp); err != nil {
		nc.Close()
		return fmt.Errorf("device %s: sending CONNECT: %w", id, err)
	}
	p, err := r.ReadPacket()
	if ack, ok := p.(*packet.Connack); err != nil || !ok || ack.ReasonCode != packet.Success {
		nc.Close()
		return fmt.Errorf("device %s: connecting: %v %w", id, p, err)
	}
	sub := &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("devices/" + id + "/commands"), QoS: 1}}}
	if err := send(nc, nil, sub); err != nil {
		nc.Close()
		return fmt.Errorf("device %s: sending SUBSCRIBE: %w", id, err)
	}
	p, err = r.ReadPacket()
	if sa, ok := p.(*packet.Suback); err != nil || !ok || len(sa.Codes) != 1 || sa.Codes[0] != 1 {
		nc.Close()
		return fmt.Errorf("device %s: subscribing: %v %w", id, p, err)
	}
	_ = nc.SetDeadline(time.Time{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		nc.Close()
		return errors.New("fleet closed")
	}
	f.conns = append(f.conns, nc)
	f.wg.Go(func() { f.read(id, nc, r) })
	return nil
}

// send encodes p (reusing buf's memory) and writes it to nc.
func send(nc net.Conn, buf []byte, p packet.Packet) error {
	b, err := packet.Append(buf[:0], p, packet.Version5)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", p.Type(), err)
	}
	_, err = nc.Write(b)
	return err
}

// read handles what the broker sends one device: each command is
// timestamped on arrival and acknowledged (QoS 1: PUBACK; QoS 2: PUBREC,
// then PUBCOMP for the PUBREL).
func (f *fleet) read(id string, nc net.Conn, r *packet.Reader) {
	buf := make([]byte, 0, 16)
	for {
		p, err := r.ReadPacket()
		if err != nil {
			f.fail(id, err)
			return
		}
		var ack *packet.Ack
		switch v := p.(type) {
		case *packet.Publish:
			f.onCommand(v.Payload, time.Now())
			switch v.QoS {
			case 1:
				ack = &packet.Ack{Kind: packet.PUBACK, PacketID: v.PacketID}
			case 2:
				ack = &packet.Ack{Kind: packet.PUBREC, PacketID: v.PacketID}
			}
		case *packet.Ack:
			if v.Kind == packet.PUBREL {
				ack = &packet.Ack{Kind: packet.PUBCOMP, PacketID: v.PacketID}
			}
		case *packet.Disconnect:
			f.fail(id, fmt.Errorf("server sent DISCONNECT 0x%02x", byte(v.ReasonCode)))
			return
		}
		if ack != nil {
			if err := send(nc, buf, ack); err != nil {
				f.fail(id, err)
				return
			}
		}
	}
}

// fail records a device's connection error unless the fleet is closing.
func (f *fleet) fail(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return // closed by close: the error says nothing about the broker
	}
	f.errs++
	if f.first == nil {
		f.first = fmt.Errorf("device %s: %w", id, err)
	}
}

// errors returns how many devices lost their connection and the first
// such error.
func (f *fleet) errors() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errs, f.first
}

// close disconnects every device and waits for the readers. It is safe
// to call twice.
func (f *fleet) close() {
	f.mu.Lock()
	f.closing = true
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for _, nc := range conns {
		_ = send(nc, nil, &packet.Disconnect{})
		nc.Close()
	}
	f.wg.Wait()
}
