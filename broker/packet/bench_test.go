package packet

import (
	"bytes"
	"testing"
)

// loopReader replays data forever without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off += n
	if l.off == len(l.data) {
		l.off = 0
	}
	return n, nil
}

// publishStream is 1000 QoS 0 PUBLISHes of a typical telemetry size.
func publishStream(b *testing.B, version byte) []byte {
	p := &Publish{Topic: []byte("sensors/building-7/floor-3/temperature"), Payload: bytes.Repeat([]byte("x"), 64)}
	var out []byte
	for range 1000 {
		var err error
		if out, err = Append(out, p, version); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkReadPublishQoS0 decodes a stream of QoS 0 PUBLISHes through a
// Reader in steady state; it must not allocate.
func BenchmarkReadPublishQoS0(b *testing.B) {
	for _, version := range []byte{Version311, Version5} {
		b.Run("v"+vname(version), func(b *testing.B) {
			data := publishStream(b, version)
			r := NewReader(&loopReader{data: data}, 0)
			r.SetVersion(version)
			b.SetBytes(int64(len(data) / 1000))
			b.ReportAllocs()
			for b.Loop() {
				p, err := r.ReadPacket()
				if err != nil {
					b.Fatal(err)
				}
				if len(p.(*Publish).Payload) != 64 {
					b.Fatal("bad payload")
				}
			}
		})
	}
}

// BenchmarkReadPublishQoS1Props decodes v5 QoS 1 PUBLISHes carrying
// properties, including user properties (reused capacity).
func BenchmarkReadPublishQoS1Props(b *testing.B) {
	p := &Publish{QoS: 1, PacketID: 1, Topic: []byte("devices/abc/events"), Payload: bytes.Repeat([]byte("y"), 128),
		Props: Properties{Present: PropPayloadFormat | PropMessageExpiry, PayloadFormat: 1, MessageExpiry: 60,
			ContentType: []byte("application/json"), User: []UserProperty{{Name: []byte("trace"), Value: []byte("abc123")}}}}
	var data []byte
	for range 1000 {
		data, _ = Append(data, p, Version5)
	}
	r := NewReader(&loopReader{data: data}, 0)
	r.SetVersion(Version5)
	b.SetBytes(int64(len(data) / 1000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendPublish encodes a PUBLISH into a reused buffer; it must
// not allocate.
func BenchmarkAppendPublish(b *testing.B) {
	p := &Publish{QoS: 1, PacketID: 7, Topic: []byte("sensors/building-7/floor-3/temperature"), Payload: bytes.Repeat([]byte("x"), 64)}
	for _, version := range []byte{Version311, Version5} {
		b.Run("v"+vname(version), func(b *testing.B) {
			dst := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = Append(dst[:0], p, version); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(dst)))
		})
	}
}

// BenchmarkDecodeConnect decodes a v5 CONNECT with properties, a will and
// credentials: Decode allocates the packet; the Reader path reuses it
// except for the CONNECT struct itself (dropped after each packet).
func BenchmarkDecodeConnect(b *testing.B) {
	c := &Connect{Version: Version5, CleanStart: true, KeepAlive: 60, ClientID: []byte("client-0123456789"),
		UsernameFlag: true, Username: []byte("user"), PasswordFlag: true, Password: []byte("secret"),
		WillFlag: true, WillQoS: 1, WillTopic: []byte("clients/client-0123456789/status"), WillPayload: []byte("offline"),
		Props: Properties{Present: PropSessionExpiry | PropReceiveMaximum, SessionExpiry: 3600, ReceiveMaximum: 100}}
	enc, err := Append(nil, c, Version5)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(enc, Version5); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Reader", func(b *testing.B) {
		r := NewReader(&loopReader{data: enc}, 0)
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.ReadPacket(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendConnack encodes the broker's usual v5 CONNACK.
func BenchmarkAppendConnack(b *testing.B) {
	c := &Connack{Props: Properties{Present: PropReceiveMaximum | PropTopicAliasMaximum | PropMaximumPacketSize,
		ReceiveMaximum: 128, TopicAliasMaximum: 64, MaximumPacketSize: 1 << 20}}
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = Append(dst[:0], c, Version5)
	}
}
