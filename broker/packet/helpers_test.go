package packet

import "bytes"

// raw builds a packet from its first byte and body parts, computing the
// remaining length.
func raw(first byte, body ...[]byte) []byte {
	bb := bytes.Join(body, nil)
	out := []byte{first}
	out = appendVarint(out, uint32(len(bb)))
	return append(out, bb...)
}

// str is a length-prefixed string or binary field.
func str(s string) []byte { return appendBinary(nil, []byte(s)) }

// u16 is a two byte integer.
func u16(v uint16) []byte { return appendU16(nil, v) }

// u32 is a four byte integer.
func u32(v uint32) []byte { return appendU32(nil, v) }

// by is a literal byte sequence.
func by(v ...byte) []byte { return v }

// props is a v5 property block: length prefix and the given properties.
func props(parts ...[]byte) []byte {
	bb := bytes.Join(parts, nil)
	return append(appendVarint(nil, uint32(len(bb))), bb...)
}

// connectV3 and connectV5 build CONNECT packets with the given flags and
// payload (after the client identifier).
func connectV3(flags byte, payload ...[]byte) []byte {
	return raw(0x10, append([][]byte{str("MQTT"), by(4, flags), u16(30), str("c")}, payload...)...)
}

func connectV5(flags byte, prop []byte, payload ...[]byte) []byte {
	return raw(0x10, append([][]byte{str("MQTT"), by(5, flags), u16(30), prop, str("c")}, payload...)...)
}
