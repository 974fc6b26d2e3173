package packet

import "io"

// DefaultMaxPacketSize is used when a Reader is created with max 0.
const DefaultMaxPacketSize = 1 << 20

// Reader decodes packets from a stream. It owns one growable buffer
// (obtained lazily, see Release) and one reusable struct per packet type;
// ReadPacket returns a pointer to that struct, valid until the next call.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r       io.Reader
	max     uint32
	version byte

	buf    []byte  // nil (released), small[:] or a buffer from getBuf
	bufp   *[]byte // getBuf handle of buf, nil when buf is nil or small
	start  int     // first byte not yet decoded
	end    int     // end of the buffered bytes
	err    error   // read error held back until the buffered bytes run out
	sticky error   // framing error: the stream cannot be resynchronised
	slots  slots
	small  [smallBufSize]byte
}

// NewReader returns a Reader that rejects packets whose total size exceeds
// max bytes (with *Error{Code: PacketTooLarge}) before allocating for them.
// It does no I/O and takes no buffer until the first ReadPacket.
func NewReader(r io.Reader, max uint32) *Reader {
	return &Reader{r: r, max: max}
}

// SetVersion sets the protocol version used to decode packets after
// CONNECT. CONNECT itself carries its version, and a successfully decoded
// CONNECT also sets the Reader's version to it. Until a version is known
// every packet but CONNECT fails with ProtocolError [MQTT-3.1.0-1].
func (r *Reader) SetVersion(v byte) { r.version = v }

// SetMaxPacketSize changes the size limit; 0 means DefaultMaxPacketSize.
func (r *Reader) SetMaxPacketSize(max uint32) { r.max = max }

// ReadPacket reads and decodes one packet. Malformed input yields *Error
// with MalformedPacket or ProtocolError (or the more specific code the
// spec names, e.g. TopicNameInvalid); a packet over the size limit yields
// PacketTooLarge without being read. I/O errors are returned as is; io.EOF
// only at a packet boundary, io.ErrUnexpectedEOF inside a packet. After an
// *Error the connection must be closed: framing errors are sticky.
//
// The returned packet and every slice in it are valid until the next call
// to ReadPacket or Release.
func (r *Reader) ReadPacket() (Packet, error) {
	// CONNECT and CONNACK come once per connection: don't keep them.
	r.slots.connect, r.slots.connack = nil, nil
	if r.sticky != nil {
		return nil, r.sticky
	}
	if err := r.fill(2); err != nil {
		return nil, err
	}
	var rem uint32
	var hlen int
	for {
		var err error
		rem, hlen, err = parseHeader(r.buf[r.start:r.end])
		if err != nil {
			r.sticky = err
			return nil, err
		}
		if hlen > 0 {
			break
		}
		if err := r.fill(r.end - r.start + 1); err != nil {
			return nil, err
		}
	}
	total := uint64(hlen) + uint64(rem)
	if total > uint64(r.limit()) {
		r.sticky = &Error{Code: PacketTooLarge, Msg: "packet exceeds the maximum packet size"}
		return nil, r.sticky
	}
	if err := r.fill(int(total)); err != nil {
		return nil, err
	}
	b := r.buf[r.start : r.start+int(total) : r.start+int(total)]
	r.start += int(total)
	p, err := decodePacket(&r.slots, b, hlen, r.version)
	if err != nil {
		return nil, err
	}
	if c, ok := p.(*Connect); ok {
		r.version = c.Version
	}
	return p, nil
}

func (r *Reader) limit() uint32 {
	if r.max == 0 {
		return DefaultMaxPacketSize
	}
	return r.max
}

// Buffered reports how many bytes are buffered and not yet decoded.
func (r *Reader) Buffered() int { return r.end - r.start }

// Release returns the Reader's buffer to a shared pool when nothing is
// buffered, so idle connections hold no read buffer. The next ReadPacket
// takes a buffer again. Release invalidates the last packet returned, like
// ReadPacket does: call it once that packet is handled.
func (r *Reader) Release() {
	if r.end > r.start {
		return
	}
	r.start, r.end = 0, 0
	if r.bufp != nil {
		r.slots.drop()
		putBuf(r.bufp)
		r.bufp = nil
	}
	r.buf = nil
}

// Decode decodes exactly one packet from b (a whole packet, fixed header
// included) for the given version. Slices in the result alias b.
func Decode(b []byte, version byte) (Packet, error) {
	rem, hlen, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if hlen == 0 {
		return nil, errTruncated
	}
	if uint64(hlen)+uint64(rem) != uint64(len(b)) {
		return nil, errLength
	}
	var s slots
	return decodePacket(&s, b, hlen, version)
}

// Append encodes p for the given protocol version, appending to dst.
// Fields that do not exist in the version (v5 properties for 3.1.1) are
// omitted, and so are v5 properties the packet type does not allow. For
// 3.1.1, a CONNACK reason code is mapped with V3ConnackCode and a SUBACK
// failure code to 0x80. DUP is only encoded for QoS > 0. A CONNECT is
// encoded for version whatever its Version field says.
//
// It returns an error only for values that cannot be encoded (a string
// over 65535 bytes, a packet over the 268435455-byte limit, a QoS or
// retain handling over 2, a SUBSCRIBE without filters, AUTH for 3.1.1).
func Append(dst []byte, p Packet, version byte) ([]byte, error) {
	pl, err := measure(p, version)
	if err != nil {
		return dst, err
	}
	return encode(dst, p, version, pl), nil
}

// Size returns the encoded size of p for version, without encoding it.
// The broker uses it to honour a client's Maximum Packet Size. It returns
// 0 when Append would fail.
func Size(p Packet, version byte) int {
	pl, err := measure(p, version)
	if err != nil {
		return 0
	}
	return 1 + varintSize(uint32(pl.rem)) + pl.rem
}
