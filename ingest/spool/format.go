package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// On-disk format (all integers little-endian):
//
//	segment file  <first offset, 20 digits>.seg
//	  header      magic "SLSP" | version uint16 (1) | reserved uint16 (0) | base offset uint64
//	  records     repeated frames, never spanning two segments
//	frame         length uint32 | crc uint32 | data [length]byte
//
// crc is CRC-32C (Castagnoli) over the 4 length bytes followed by the data,
// so a corrupted length is caught as surely as corrupted data, and a run of
// zero bytes (what a filesystem may leave after a crash) never decodes as a
// valid empty record.

const (
	segMagic      = "SLSP"
	segVersion    = 1
	segHeaderSize = 16
	frameOverhead = 8
	segSuffix     = ".seg"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Frame decoding errors. They describe why a scan stopped; recovery treats
// all of them as "the valid prefix ends here".
var (
	errShortFrame = errors.New("short frame")
	errBadLength  = errors.New("frame length out of range")
	errChecksum   = errors.New("frame checksum mismatch")
	errBadHeader  = errors.New("bad segment header")
)

// frameCRC is the checksum stored in a frame for data.
func frameCRC(lenBytes []byte, data []byte) uint32 {
	c := crc32.Update(0, crcTable, lenBytes)
	return crc32.Update(c, crcTable, data)
}

// appendFrame appends the framed form of data to dst.
func appendFrame(dst, data []byte) []byte {
	var hdr [frameOverhead]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[4:8], frameCRC(hdr[0:4], data))
	dst = append(dst, hdr[:]...)
	return append(dst, data...)
}

// encodeSegHeader returns the header of the segment starting at base.
func encodeSegHeader(base uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint16(h[4:6], segVersion)
	binary.LittleEndian.PutUint64(h[8:16], base)
	return h
}

// checkSegHeader reports whether h is a valid header for a segment starting
// at base.
func checkSegHeader(h []byte, base uint64) error {
	if len(h) < segHeaderSize {
		return fmt.Errorf("%w: %d bytes", errBadHeader, len(h))
	}
	if string(h[0:4]) != segMagic {
		return fmt.Errorf("%w: magic %q", errBadHeader, h[0:4])
	}
	if v := binary.LittleEndian.Uint16(h[4:6]); v != segVersion {
		return fmt.Errorf("%w: unsupported version %d", errBadHeader, v)
	}
	if b := binary.LittleEndian.Uint64(h[8:16]); b != base {
		return fmt.Errorf("%w: base offset %d does not match file name (%d)", errBadHeader, b, base)
	}
	return nil
}

// frameReader decodes frames sequentially from a buffered reader (the
// recovery scan; cursors use segReader).
type frameReader struct {
	br  *bufio.Reader
	hdr [frameOverhead]byte
}

// next decodes one frame, returning its data in a buffer it allocates.
// remaining bounds the frame size when known (>= 0), so a corrupted length
// cannot make it allocate more than the file holds. It returns io.EOF only
// at a clean frame boundary.
func (f *frameReader) next(remaining int64) ([]byte, error) {
	n, err := io.ReadFull(f.br, f.hdr[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, errShortFrame
	}
	size := binary.LittleEndian.Uint32(f.hdr[0:4])
	if size > hardMaxRecordBytes {
		return nil, errBadLength
	}
	if remaining >= 0 && int64(size) > remaining-frameOverhead {
		return nil, errShortFrame
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f.br, data); err != nil {
		return nil, errShortFrame
	}
	if frameCRC(f.hdr[0:4], data) != binary.LittleEndian.Uint32(f.hdr[4:8]) {
		return nil, errChecksum
	}
	return data, nil
}

// scanValid decodes frames from r until the first invalid or incomplete one
// and returns how many whole records it found, the number of bytes they
// occupy, and why it stopped (nil at a clean end of input). size is the
// number of bytes r holds.
func scanValid(r io.Reader, size int64, fn func(data []byte)) (records uint64, valid int64, stop error) {
	fr := frameReader{br: bufio.NewReaderSize(r, 256<<10)}
	for {
		data, err := fr.next(size - valid)
		if err == io.EOF {
			return records, valid, nil
		}
		if err != nil {
			return records, valid, err
		}
		if fn != nil {
			fn(data)
		}
		records++
		valid += frameOverhead + int64(len(data))
	}
}
