package packet

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// stream encodes packets back to back for version.
func stream(t testing.TB, version byte, ps ...Packet) []byte {
	t.Helper()
	var out []byte
	for _, p := range ps {
		var err error
		if out, err = Append(out, p, version); err != nil {
			t.Fatalf("Append(%v): %v", p.Type(), err)
		}
	}
	return out
}

// countingReader counts Read calls and bytes handed out.
type countingReader struct {
	r     io.Reader
	reads int
	n     int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReaderChunking(t *testing.T) {
	connect := &Connect{Version: Version5, CleanStart: true, ClientID: b("c")}
	pkts := []Packet{connect}
	for i := range 200 {
		pkts = append(pkts, &Publish{QoS: 1, Topic: b("t/x"), PacketID: uint16(i + 1), Payload: bytes.Repeat(b("p"), i*37)})
		pkts = append(pkts, &Pingreq{}, &Ack{Kind: PUBACK, PacketID: uint16(i + 1)})
	}
	pkts = append(pkts, &Publish{Topic: b("big"), Payload: bytes.Repeat(b("B"), 300000)}, &Disconnect{})
	data := stream(t, Version5, pkts...)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data err": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(wrap(bytes.NewReader(data)), 0)
			for i, want := range pkts {
				got, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !equalPackets(got, want) {
					t.Fatalf("packet %d:\n got %#v\nwant %#v", i, got, want)
				}
				if i%7 == 0 {
					r.Release() // releasing mid-stream must not lose data
				}
			}
			if _, err := r.ReadPacket(); err != io.EOF {
				t.Fatalf("after last packet: %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderLargeReads(t *testing.T) {
	var pkts []Packet
	for i := range 1000 {
		pkts = append(pkts, &Publish{Topic: b("sensors/1/temp"), Payload: b("21.5"), Retain: i%2 == 0})
	}
	data := stream(t, Version311, pkts...)
	cr := &countingReader{r: bytes.NewReader(data)}
	r := NewReader(cr, 0)
	r.SetVersion(Version311)
	for range pkts {
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	// The first read fills the inline buffer; after that reads fill
	// 8 KiB chunks, so ~26 KB take a handful of calls, not one per packet.
	if max := 2 + len(data)/(1<<minBufShift-64) + 1; cr.reads > max {
		t.Fatalf("%d reads for %d bytes, want <= %d", cr.reads, len(data), max)
	}
}

func TestReaderEOF(t *testing.T) {
	full := stream(t, Version311, &Publish{Topic: b("a"), Payload: b("xyz")})
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"inside fixed header", full[:1], io.ErrUnexpectedEOF},
		{"inside body", full[:len(full)-1], io.ErrUnexpectedEOF},
		{"incomplete remaining length", by(0x30, 0x80), io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.in), 0)
			r.SetVersion(Version311)
			if _, err := r.ReadPacket(); err != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestReaderTooLarge checks the limit is enforced from the fixed header
// alone: the Reader neither reads nor allocates for the body.
func TestReaderTooLarge(t *testing.T) {
	cases := []struct {
		name string
		max  uint32
		in   []byte
	}{
		{"claims 256 MB, max 1 KiB", 1024, by(0x30, 0xFF, 0xFF, 0xFF, 0x7F)},
		{"one byte over max", 10, raw(0x30, str("a"), make([]byte, 6))},
		{"default max", 0, by(0x30, 0x80, 0x80, 0x40)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tc.in)}
			r := NewReader(cr, tc.max)
			r.SetVersion(Version311)
			_, err := r.ReadPacket()
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != PacketTooLarge {
				t.Fatalf("err = %v, want PacketTooLarge", err)
			}
			if r.bufp != nil {
				t.Fatalf("took a %d-byte buffer for a rejected packet", cap(r.buf))
			}
			if _, err2 := r.ReadPacket(); err2 != err {
				t.Fatalf("error not sticky: %v", err2)
			}
		})
	}
	t.Run("exactly max is accepted", func(t *testing.T) {
		in := raw(0x30, str("a"), make([]byte, 6))
		r := NewReader(bytes.NewReader(in), uint32(len(in)))
		r.SetVersion(Version311)
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReaderRelease checks buffer ownership: an idle Reader holds no
// pooled buffer, small packets after Release use the inline buffer, and
// Release keeps buffered bytes.
func TestReaderRelease(t *testing.T) {
	t.Run("idle holds no buffer", func(t *testing.T) {
		data := stream(t, Version311, &Publish{Topic: b("a"), Payload: make([]byte, 20000)}, &Pingreq{})
		r := NewReader(bytes.NewReader(data), 0)
		r.SetVersion(Version311)
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
		if r.bufp == nil {
			t.Fatal("a 20 KB packet was read without a pooled buffer")
		}
		if r.Buffered() != 2 {
			t.Fatalf("Buffered = %d, want 2 (PINGREQ)", r.Buffered())
		}
		r.Release() // PINGREQ still buffered: must keep the buffer
		if r.bufp == nil || r.Buffered() != 2 {
			t.Fatal("Release dropped buffered bytes")
		}
		if p, err := r.ReadPacket(); err != nil || p.Type() != PINGREQ {
			t.Fatalf("got %v, %v", p, err)
		}
		r.Release()
		if r.buf != nil || r.bufp != nil || r.Buffered() != 0 {
			t.Fatal("Release with nothing buffered kept the buffer")
		}
	})
	t.Run("small packet after release uses the inline buffer", func(t *testing.T) {
		r := NewReader(bytes.NewReader(stream(t, Version311, &Pingreq{}, &Ack{Kind: PUBACK, PacketID: 1})), 0)
		r.SetVersion(Version311)
		for range 2 {
			if _, err := r.ReadPacket(); err != nil {
				t.Fatal(err)
			}
			if r.bufp != nil {
				t.Fatal("small packets took a pooled buffer")
			}
			r.Release()
		}
	})
	t.Run("release on a fresh reader", func(t *testing.T) {
		r := NewReader(bytes.NewReader(nil), 0)
		r.Release()
		if r.Buffered() != 0 {
			t.Fatal("fresh reader has buffered bytes")
		}
	})
}

func TestReaderVersion(t *testing.T) {
	data := stream(t, Version5, &Connect{Version: Version5, ClientID: b("c")},
		&Ack{Kind: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded})
	t.Run("CONNECT sets the version", func(t *testing.T) {
		r := NewReader(bytes.NewReader(data), 0)
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
		p, err := r.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if a := p.(*Ack); a.ReasonCode != QuotaExceeded {
			t.Fatalf("reason code %v not decoded as v5", a.ReasonCode)
		}
	})
	t.Run("MQTT-3.1.0-1 packet before CONNECT", func(t *testing.T) {
		r := NewReader(bytes.NewReader(data[len(data)-5:]), 0)
		_, err := r.ReadPacket()
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != ProtocolError {
			t.Fatalf("err = %v, want ProtocolError", err)
		}
	})
}

// errAfterReader returns data, then err once, then the rest.
type errAfterReader struct {
	first, rest []byte
	err         error
	step        int
}

func (e *errAfterReader) Read(p []byte) (int, error) {
	e.step++
	switch e.step {
	case 1:
		return copy(p, e.first), nil
	case 2:
		return 0, e.err
	}
	n := copy(p, e.rest)
	e.rest = e.rest[n:]
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func TestReaderErrors(t *testing.T) {
	t.Run("transient read error keeps the partial packet", func(t *testing.T) {
		data := stream(t, Version311, &Publish{Topic: b("a"), Payload: b("payload")})
		timeout := errors.New("timeout")
		r := NewReader(&errAfterReader{first: data[:4], rest: data[4:], err: timeout}, 0)
		r.SetVersion(Version311)
		if _, err := r.ReadPacket(); err != timeout {
			t.Fatalf("err = %v, want timeout", err)
		}
		p, err := r.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if string(p.(*Publish).Payload) != "payload" {
			t.Fatalf("payload %q", p.(*Publish).Payload)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		r := NewReader(zeroReader{}, 0)
		if _, err := r.ReadPacket(); err != io.ErrNoProgress {
			t.Fatalf("err = %v, want io.ErrNoProgress", err)
		}
	})
	t.Run("malformed packet is not sticky", func(t *testing.T) {
		data := append(raw(0x36, str("a"), u16(1)), stream(t, Version311, &Pingreq{})...)
		r := NewReader(bytes.NewReader(data), 0)
		r.SetVersion(Version311)
		if _, err := r.ReadPacket(); err == nil {
			t.Fatal("QoS 3 accepted")
		}
		if p, err := r.ReadPacket(); err != nil || p.Type() != PINGREQ {
			t.Fatalf("got %v, %v", p, err)
		}
	})
	t.Run("bad remaining length is sticky", func(t *testing.T) {
		r := NewReader(bytes.NewReader(by(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0xC0, 0)), 0)
		r.SetVersion(Version311)
		_, err1 := r.ReadPacket()
		_, err2 := r.ReadPacket()
		if err1 == nil || err2 != err1 {
			t.Fatalf("errors %v, %v", err1, err2)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }
