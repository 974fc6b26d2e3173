package packet

import (
	"errors"
	"io"
	"testing"
)

// seedPackets returns encoded sample packets of every type and version,
// for fuzz corpora.
func seedPackets(t testing.TB) [][]byte {
	var out [][]byte
	for _, version := range []byte{Version31, Version311, Version5} {
		for _, p := range samplePackets(version) {
			enc, err := Append(nil, p, version)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, enc)
		}
	}
	return out
}

// FuzzDecode decodes arbitrary bytes for every version. Anything that
// decodes must re-encode, decode to an equal packet and re-encode to the
// same bytes; anything that fails must fail with *Error.
func FuzzDecode(f *testing.F) {
	for _, s := range seedPackets(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, version := range []byte{Version31, Version311, Version5} {
			p, err := Decode(data, version)
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) || p != nil {
					t.Fatalf("v%d: Decode error %T %v with packet %v", version, err, err, p)
				}
				continue
			}
			encVersion := version
			if c, ok := p.(*Connect); ok {
				encVersion = c.Version
			}
			enc, err := Append(nil, p, encVersion)
			if err != nil {
				t.Fatalf("v%d: Append of decoded %#v: %v", version, p, err)
			}
			if n := Size(p, encVersion); n != len(enc) {
				t.Fatalf("v%d: Size %d, Append wrote %d", version, n, len(enc))
			}
			p2, err := Decode(enc, encVersion)
			if err != nil {
				t.Fatalf("v%d: Decode of re-encoded % x: %v", version, enc, err)
			}
			if !equalPackets(p, p2) {
				t.Fatalf("v%d: round trip changed the packet:\n in  %#v\n out %#v", version, p, p2)
			}
			enc2, err := Append(nil, p2, encVersion)
			if err != nil || string(enc2) != string(enc) {
				t.Fatalf("v%d: encoding not stable: % x vs % x (%v)", version, enc, enc2, err)
			}
		}
	})
}

// chunkReader hands out data in pieces of at most n bytes.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.n, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzReader reads an arbitrary stream in arbitrary chunks and checks
// every result against framing the stream independently and decoding each
// packet with Decode.
func FuzzReader(f *testing.F) {
	seeds := seedPackets(f)
	var all []byte
	for _, s := range seeds {
		f.Add(s, byte(Version5), uint16(1), false)
		all = append(all, s...)
	}
	f.Add(all, byte(0), uint16(7), true)
	f.Add(all, byte(Version311), uint16(4096), false)
	f.Fuzz(func(t *testing.T, data []byte, version byte, chunk uint16, release bool) {
		const max = 1 << 12
		if version > Version5 {
			version %= Version5 + 1
		}
		r := NewReader(&chunkReader{data: data, n: int(chunk%9000) + 1}, max)
		r.SetVersion(version)
		off := 0
		for i := 0; ; i++ {
			p, err := r.ReadPacket()
			rest := data[off:]
			rem, hlen, herr := parseHeader(rest)
			switch {
			case len(rest) == 0:
				if err != io.EOF {
					t.Fatalf("at end of stream: %v, %v; want io.EOF", p, err)
				}
				return
			case herr != nil:
				if !isCode(err, MalformedPacket) {
					t.Fatalf("bad remaining length: got %v", err)
				}
				return
			case hlen == 0:
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("partial header: got %v, want io.ErrUnexpectedEOF", err)
				}
				return
			case uint64(hlen)+uint64(rem) > max:
				if !isCode(err, PacketTooLarge) {
					t.Fatalf("oversized packet: got %v", err)
				}
				return
			case hlen+int(rem) > len(rest):
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("partial packet: got %v, want io.ErrUnexpectedEOF", err)
				}
				return
			}
			total := hlen + int(rem)
			want, werr := Decode(rest[:total], version)
			off += total
			if werr != nil {
				var pe, we *Error
				if !errors.As(err, &pe) || !errors.As(werr, &we) || pe.Code != we.Code {
					t.Fatalf("packet %d: Reader %v, Decode %v", i, err, werr)
				}
			} else {
				if err != nil || !equalPackets(p, want) {
					t.Fatalf("packet %d: Reader %#v, %v; Decode %#v", i, p, err, want)
				}
				if c, ok := want.(*Connect); ok {
					version = c.Version
				}
			}
			if release && i%3 == 0 {
				r.Release()
			}
		}
	})
}

func isCode(err error, code ReasonCode) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Code == code
}
