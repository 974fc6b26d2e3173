//go:build linux

package listener

import (
	"bytes"
	"io"
	"net"
	"syscall"
)

// peekLineLen reports the length of the line (CRLF included) waiting in
// r's socket, peeking into buf without consuming, waiting for more bytes
// until the CRLF or len(buf) bytes arrived. ok is false when r is not a
// TCP socket; the caller then reads in steps. A line longer than buf
// returns n == 0.
func peekLineLen(r io.Reader, buf []byte) (n int, ok bool, err error) {
	tc, isTCP := r.(*net.TCPConn)
	if !isTCP {
		return 0, false, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var perr error
	err = raw.Read(func(fd uintptr) bool {
		m, _, e := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case e == syscall.EAGAIN || e == syscall.EINTR:
			return false // wait for readability
		case e != nil:
			perr = e
			return true
		case m == 0:
			perr = io.ErrUnexpectedEOF
			return true
		}
		if i := bytes.Index(buf[:m], []byte("\r\n")); i >= 0 {
			n = i + 2
			return true
		}
		// No CRLF yet: done if max bytes are there, else wait for more.
		return m == len(buf)
	})
	if err == nil {
		err = perr
	}
	return n, true, err
}
