//go:build linux

package listener

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"unsafe"
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
		if m == len(buf) {
			return true // no CRLF within the limit
		}
		// No CRLF yet: wait for more, unless the client has finished
		// sending (a FIN does not show in a peek while data is pending).
		if peerClosed(fd) {
			perr = io.ErrUnexpectedEOF
			return true
		}
		return false
	})
	if err == nil {
		err = perr
	}
	return n, true, err
}

// tcpCloseWait is TCP_CLOSE_WAIT, the state after the peer's FIN.
const tcpCloseWait = 8

// peerClosed reports whether the peer of TCP socket fd has sent its FIN
// (tcp_info's first byte is the connection state).
func peerClosed(fd uintptr) bool {
	var info [256]byte
	n := uint32(len(info))
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	return e == 0 && n > 0 && info[0] == tcpCloseWait
}
