package listener

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes sent to the client.
const (
	closeNormal      = 1000
	closeProtocol    = 1002
	closeUnsupported = 1003
)

// Reader states.
const (
	stHeader  = iota // reading a frame header
	stData           // passing a data frame's payload to Read
	stControl        // collecting a control frame's payload
)

// wsCloseTimeout bounds the close frame Close tries to send.
const wsCloseTimeout = 100 * time.Millisecond

// wsSmallWrite is the largest payload Write copies next to its header to
// send one buffer; larger payloads go out as header and payload (writev on
// TCP).
const wsSmallWrite = 4096

var wsWritePool = sync.Pool{New: func() any { b := make([]byte, 0, wsSmallWrite+10); return &b }}

// ErrWebSocketClosed is returned by Read once the client sent a close
// frame (wrapping io.EOF) and by Write once a close frame was sent.
var ErrWebSocketClosed = errors.New("websocket closed")

// wsProtocolError is a frame that breaks RFC 6455 or MQTT's use of it.
type wsProtocolError struct{ msg string }

func (e *wsProtocolError) Error() string { return "websocket protocol error: " + e.msg }

// wsConn presents the payload of a server-side WebSocket's binary frames
// as one byte stream: an MQTT packet may span frames and a frame may hold
// several packets. Write sends each call as one binary frame. Read and
// Write may run concurrently (one reader, any writers); the reader's state
// survives errors such as a passed read deadline, so reading may resume
// mid-frame. Nothing is buffered but the bytes a client sent right after
// its upgrade request.
type wsConn struct {
	net.Conn        // the socket (TCP or TLS)
	pre      []byte // bytes read past the upgrade request, consumed first

	// Reader state, owned by the one reader.
	state     int
	hdr       [14]byte
	hn, hneed int // header bytes read, needed
	mask      [4]byte
	maskPos   int
	remaining uint64 // payload bytes left in the current data frame
	inMessage bool   // a fragmented binary message awaits continuations
	ctrlOp    byte
	ctrl      [125]byte
	cn, cneed int
	rerr      error // sticky: the stream has ended

	wmu       sync.Mutex // serializes frames; guards closeSent
	closeSent bool
}

func newWSConn(c net.Conn, pre []byte) *wsConn {
	return &wsConn{Conn: c, pre: pre, hneed: 2}
}

// readRaw reads from the leftover handshake bytes, then the socket.
func (c *wsConn) readRaw(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Read returns payload bytes of binary frames, answering pings and close
// frames on the way.
func (c *wsConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.rerr != nil {
			return 0, c.rerr
		}
		switch c.state {
		case stHeader:
			if err := c.readHeader(); err != nil {
				return 0, err
			}
		case stControl:
			if err := c.readControl(); err != nil {
				return 0, err
			}
		case stData:
			if c.remaining == 0 {
				c.state = stHeader
				continue
			}
			if uint64(len(p)) > c.remaining {
				p = p[:c.remaining]
			}
			n, err := c.readRaw(p)
			c.unmask(p[:n])
			c.remaining -= uint64(n)
			if c.remaining == 0 {
				c.state = stHeader
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the socket ended inside a frame
			}
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
	}
}

// readHeader reads (or continues reading) a frame header and moves to
// the state its opcode calls for.
func (c *wsConn) readHeader() error {
	for c.hn < c.hneed {
		n, err := c.readRaw(c.hdr[c.hn:c.hneed])
		c.hn += n
		if c.hn == 2 && c.hneed == 2 {
			if c.hdr[1]&0x80 == 0 {
				c.hn = 0
				return c.fail(closeProtocol, "client frame not masked")
			}
			c.hneed = 2 + 4 // mask key
			switch c.hdr[1] & 0x7f {
			case 126:
				c.hneed += 2
			case 127:
				c.hneed += 8
			}
		}
		if c.hn < c.hneed && err != nil {
			if errors.Is(err, io.EOF) && c.hn > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	b0, b1 := c.hdr[0], c.hdr[1]
	fin, op := b0&0x80 != 0, b0&0x0f
	var length uint64
	switch l := b1 & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(c.hdr[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(c.hdr[2:10])
	default:
		length = uint64(l)
	}
	copy(c.mask[:], c.hdr[c.hneed-4:c.hneed])
	c.maskPos = 0
	c.hn, c.hneed = 0, 2
	switch {
	case b0&0x70 != 0:
		return c.fail(closeProtocol, "reserved bits set (no extension was negotiated)")
	case length>>63 != 0:
		return c.fail(closeProtocol, "frame length out of range")
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin || length > 125 {
			return c.fail(closeProtocol, "fragmented or oversized control frame")
		}
		c.ctrlOp, c.cn, c.cneed = op, 0, int(length)
		c.state = stControl
		return nil
	case opBinary:
		if c.inMessage {
			return c.fail(closeProtocol, "new message before the last one ended")
		}
	case opContinuation:
		if !c.inMessage {
			return c.fail(closeProtocol, "continuation without a message")
		}
	case opText:
		return c.fail(closeUnsupported, "text frame (MQTT over WebSocket is binary only)")
	default:
		return c.fail(closeProtocol, fmt.Sprintf("reserved opcode %#x", op))
	}
	c.inMessage = !fin
	c.remaining = length
	c.state = stData
	return nil
}

// readControl collects a control frame's payload and acts on it.
func (c *wsConn) readControl() error {
	for c.cn < c.cneed {
		n, err := c.readRaw(c.ctrl[c.cn:c.cneed])
		c.cn += n
		if c.cn < c.cneed && err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	payload := c.ctrl[:c.cneed]
	c.unmask(payload)
	c.state = stHeader
	switch c.ctrlOp {
	case opPing:
		if err := c.writeFrame(opPong, payload); err != nil {
			return err
		}
	case opClose:
		if len(payload) == 1 {
			return c.fail(closeProtocol, "close frame with a 1-byte payload")
		}
		code := uint16(closeNormal)
		if len(payload) >= 2 {
			code = binary.BigEndian.Uint16(payload)
		}
		c.sendClose(code)
		c.rerr = fmt.Errorf("%w by the client (code %d): %w", ErrWebSocketClosed, code, io.EOF)
		return c.rerr
	}
	return nil // pong: nothing to do
}

// unmask XORs b with the frame's mask key from the current position.
func (c *wsConn) unmask(b []byte) {
	i := c.maskPos
	for j := range b {
		b[j] ^= c.mask[i&3]
		i++
	}
	c.maskPos = i & 3
}

// fail sends a close frame with code and ends the stream.
func (c *wsConn) fail(code uint16, msg string) error {
	c.sendClose(code)
	c.rerr = &wsProtocolError{msg: msg}
	return c.rerr
}

// sendClose sends a close frame once.
func (c *wsConn) sendClose(code uint16) {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], code)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return
	}
	c.closeSent = true
	c.writeLocked(opClose, b[:])
}

// Write sends p as one binary frame.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, ErrWebSocketClosed
	}
	return c.writeLocked(opBinary, p)
}

func (c *wsConn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrWebSocketClosed
	}
	_, err := c.writeLocked(op, p)
	return err
}

// writeLocked writes one unmasked frame; it returns the payload bytes
// written.
func (c *wsConn) writeLocked(op byte, p []byte) (int, error) {
	var hdr [10]byte
	hdr[0] = 0x80 | op
	h := 2
	switch n := len(p); {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	if len(p) <= wsSmallWrite {
		bp := wsWritePool.Get().(*[]byte)
		b := append(append((*bp)[:0], hdr[:h]...), p...)
		n, err := c.Conn.Write(b)
		*bp = b
		wsWritePool.Put(bp)
		return max(n-h, 0), err
	}
	bufs := net.Buffers{hdr[:h], p}
	n, err := bufs.WriteTo(c.Conn)
	return int(max(n-int64(h), 0)), err
}

// Close sends a normal close frame when no write is in progress (never
// waiting more than wsCloseTimeout) and closes the socket.
func (c *wsConn) Close() error {
	if c.wmu.TryLock() {
		if !c.closeSent {
			c.closeSent = true
			var b [2]byte
			binary.BigEndian.PutUint16(b[:], closeNormal)
			c.Conn.SetWriteDeadline(time.Now().Add(wsCloseTimeout))
			c.writeLocked(opClose, b[:])
		}
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}
