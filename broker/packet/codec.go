package packet

import "io"

// The functions in this file are the codec's public API. (Bodies are
// placeholders until the codec lands.)

// DefaultMaxPacketSize is used when a Reader is created with max 0.
const DefaultMaxPacketSize = 1 << 20

// Reader decodes packets from a stream. It owns one growable buffer
// (obtained lazily, see Release) and one reusable struct per packet type;
// ReadPacket returns a pointer to that struct, valid until the next call.
type Reader struct {
	r       io.Reader
	max     uint32
	version byte
}

// NewReader returns a Reader that rejects packets whose total size exceeds
// max bytes (with *Error{Code: PacketTooLarge}) before allocating for them.
func NewReader(r io.Reader, max uint32) *Reader {
	panic("unimplemented")
}

// SetVersion sets the protocol version used to decode packets after
// CONNECT. CONNECT itself carries its version.
func (r *Reader) SetVersion(v byte) { r.version = v }

// SetMaxPacketSize changes the size limit.
func (r *Reader) SetMaxPacketSize(max uint32) { r.max = max }

// ReadPacket reads and decodes one packet. Malformed input yields *Error
// with MalformedPacket or ProtocolError; I/O errors are returned as is.
func (r *Reader) ReadPacket() (Packet, error) {
	panic("unimplemented")
}

// Buffered reports how many bytes are buffered and not yet decoded.
func (r *Reader) Buffered() int { panic("unimplemented") }

// Release returns the Reader's buffer to a shared pool when nothing is
// buffered, so idle connections hold no read buffer. The next ReadPacket
// takes a buffer again.
func (r *Reader) Release() { panic("unimplemented") }

// Decode decodes exactly one packet from b (a whole packet, fixed header
// included) for the given version. Slices in the result alias b.
func Decode(b []byte, version byte) (Packet, error) {
	panic("unimplemented")
}

// Append encodes p for the given protocol version, appending to dst.
// Fields that do not exist in the version (v5 properties for 3.1.1) are
// omitted. It returns an error only for values that cannot be encoded
// (a string over 65535 bytes, a packet over the 268435455-byte limit).
func Append(dst []byte, p Packet, version byte) ([]byte, error) {
	panic("unimplemented")
}

// Size returns the encoded size of p for version, without encoding it.
// The broker uses it to honour a client's Maximum Packet Size.
func Size(p Packet, version byte) int {
	panic("unimplemented")
}
