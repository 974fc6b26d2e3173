package spool

import (
	"encoding/binary"
	"io"
	"os"
)

// readBufBytes is a cursor's read buffer: one read system call fetches
// this much, and a NextBatch returns at most what it holds (~240 records
// of 256 bytes).
const readBufBytes = 64 << 10

// segReader reads the frames of one segment file through a buffer it
// reuses. Frames are decoded in place: the data it returns aliases the
// buffer. Bytes are only moved within the buffer (or the buffer replaced)
// when the caller allows it, so a batch of frames returned together stays
// valid until the next call that allows moving.
type segReader struct {
	f      *os.File
	seg    uint64 // base of the segment f belongs to
	off    uint64 // offset of the frame at buf[lo:]
	buf    []byte // len(buf) == cap(buf)
	lo, hi int    // unconsumed bytes: buf[lo:hi]
}

// open positions the reader at the first frame of the segment at base.
func (r *segReader) open(dir string, base uint64) error {
	r.close()
	f, err := openSegmentAt(dir, base)
	if err != nil {
		return err
	}
	if r.buf == nil {
		r.buf = make([]byte, readBufBytes)
	}
	r.f, r.seg, r.off, r.lo, r.hi = f, base, base, 0, 0
	return nil
}

// close releases the file; the buffer is kept for the next segment.
func (r *segReader) close() {
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
}

// at reports whether the reader can reach offset pos of segment base
// without reopening the file.
func (r *segReader) at(base, pos uint64) bool {
	return r.f != nil && r.seg == base && r.off <= pos
}

// ensure makes n bytes available at buf[lo:]. Without move it only reads
// into the free space after hi, leaving every byte already returned in
// place, and reports false when that space is too small.
func (r *segReader) ensure(n int, move bool) (bool, error) {
	for r.hi-r.lo < n {
		if len(r.buf)-r.lo < n {
			if !move {
				return false, nil
			}
			r.compact(n)
		}
		k, err := r.f.Read(r.buf[r.hi:])
		r.hi += k
		if k == 0 {
			// Committed frames are whole on disk: running out of file
			// before one ends means it is damaged.
			if err == nil || err == io.EOF {
				return false, errShortFrame
			}
			return false, err
		}
	}
	return true, nil
}

// compact moves the unconsumed bytes to the front of a buffer that can
// hold n bytes, growing it for a large frame and shrinking it back after.
func (r *segReader) compact(n int) {
	size := max(readBufBytes, n)
	if len(r.buf) < size || (len(r.buf) > 4*readBufBytes && size == readBufBytes) {
		nb := make([]byte, size)
		r.hi = copy(nb, r.buf[r.lo:r.hi])
		r.buf, r.lo = nb, 0
		return
	}
	r.hi = copy(r.buf, r.buf[r.lo:r.hi])
	r.lo = 0
}

// next decodes and CRC-checks the frame at the read position and returns
// its data, which aliases the buffer. ok is false (with a nil error) when
// the frame is not buffered whole and move is false.
func (r *segReader) next(move bool) (data []byte, ok bool, err error) {
	if ok, err := r.ensure(frameOverhead, move); !ok {
		return nil, false, err
	}
	hdr := r.buf[r.lo : r.lo+frameOverhead]
	size := binary.LittleEndian.Uint32(hdr[0:4])
	if size > hardMaxRecordBytes {
		return nil, false, errBadLength
	}
	n := frameOverhead + int(size)
	if ok, err := r.ensure(n, move); !ok {
		return nil, false, err
	}
	hdr = r.buf[r.lo : r.lo+frameOverhead] // ensure may have moved it
	data = r.buf[r.lo+frameOverhead : r.lo+n : r.lo+n]
	if frameCRC(hdr[0:4], data) != binary.LittleEndian.Uint32(hdr[4:8]) {
		return nil, false, errChecksum
	}
	r.lo += n
	r.off++
	return data, true, nil
}

// skip advances past the frame at the read position without checking its
// CRC (it was verified when written or recovered). It may move the buffer.
func (r *segReader) skip() error {
	if _, err := r.ensure(frameOverhead, true); err != nil {
		return err
	}
	size := int64(binary.LittleEndian.Uint32(r.buf[r.lo : r.lo+4]))
	if size > hardMaxRecordBytes {
		return errBadLength
	}
	n := frameOverhead + size
	if buffered := int64(r.hi - r.lo); n <= buffered {
		r.lo += int(n)
	} else {
		if _, err := r.f.Seek(n-buffered, io.SeekCurrent); err != nil {
			return err
		}
		r.lo, r.hi = 0, 0
	}
	r.off++
	return nil
}
