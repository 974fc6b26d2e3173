package packet

import (
	"errors"
	"io"
	"math/bits"
	"sync"
)

const (
	// smallBufSize is the Reader's inline buffer: a Reader without a
	// pooled buffer reads into it, so an idle connection waiting for its
	// next packet holds no heap buffer, and a lone small packet (PINGREQ,
	// an ack, a short PUBLISH) is decoded without touching the pool.
	smallBufSize = 64
	// Pooled buffers come in power-of-two classes from minBufShift (the
	// read chunk while data flows) to maxBufShift; larger buffers are
	// allocated for their packet and dropped on Release.
	minBufShift = 13 // 8 KiB
	maxBufShift = 22 // 4 MiB
	// growFactor bounds each growth step, so a peer announcing a large
	// packet must send the bytes before the buffer follows.
	growFactor = 4
	// maxEmptyReads is how many (0, nil) reads in a row mean no progress.
	maxEmptyReads = 100
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

var errBadRead = errors.New("reading packet: io.Reader returned an invalid count")

// getBuf returns a buffer of at least n bytes (at least 1<<minBufShift).
func getBuf(n int) *[]byte {
	if n < 1<<minBufShift {
		n = 1 << minBufShift
	}
	if n > 1<<maxBufShift {
		b := make([]byte, n)
		return &b
	}
	shift := bits.Len(uint(n - 1)) // smallest power of two >= n
	if p, ok := bufPools[shift-minBufShift].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 1<<shift)
	return &b
}

// putBuf returns a buffer from getBuf to its pool; others are dropped.
func putBuf(p *[]byte) {
	c := cap(*p)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	*p = (*p)[:c]
	bufPools[bits.Len(uint(c))-1-minBufShift].Put(p)
}

// fill reads until at least need bytes are buffered, reading as much as
// the buffer holds on each call.
func (r *Reader) fill(need int) error {
	empty := 0
	for r.end-r.start < need {
		if r.err != nil {
			err := r.err
			r.err = nil
			if err == io.EOF && r.end > r.start {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		r.makeRoom(need)
		n, err := r.r.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return errBadRead
		}
		r.end += n
		if err != nil {
			r.err = err
		} else if n == 0 {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// makeRoom prepares the buffer for a read towards need buffered bytes:
// the inline buffer while nothing is buffered, a pooled buffer once data
// flows, compacted so the read lands after the undecoded bytes.
func (r *Reader) makeRoom(need int) {
	buffered := r.end - r.start
	if r.buf == nil || (buffered == 0 && r.bufp == nil) {
		r.buf, r.start, r.end = r.small[:], 0, 0
		return
	}
	if r.bufp == nil { // inline buffer with a partial packet: data flows
		r.grow(need)
		return
	}
	if r.start > 0 {
		copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, buffered
	}
	if r.end == len(r.buf) {
		r.grow(need)
	}
}

// grow moves the buffered bytes to a larger buffer, at most growFactor
// times the current one and no larger than need requires.
func (r *Reader) grow(need int) {
	n := need
	if limit := growFactor * len(r.buf); n > limit {
		n = limit
	}
	p := getBuf(n)
	nb := *p
	buffered := copy(nb, r.buf[r.start:r.end])
	if r.bufp != nil {
		r.slots.drop()
		putBuf(r.bufp)
	}
	r.buf, r.bufp, r.start, r.end = nb, p, 0, buffered
}
