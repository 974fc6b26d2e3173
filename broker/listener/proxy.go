package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// PROXY protocol (haproxy.org/download/3.0/doc/proxy-protocol.txt).
var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	proxyV1MaxLen = 107 // the whole v1 line, CRLF included
	proxyV2Header = 16  // signature, version/command, family, length
)

// errProxy marks a malformed or missing PROXY header.
var errProxy = errors.New("bad PROXY header")

func proxyErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProxy, fmt.Sprintf(format, args...))
}

// readProxyHeader reads a PROXY v1 or v2 header from r and never reads
// past its end, so the bytes after it stay in the socket (the connection
// can still be handed over as a raw *net.TCPConn). It returns the client
// address the header carries, or nil when the header says to keep the
// socket's own (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC or UNIX addresses).
func readProxyHeader(r io.Reader) (net.Addr, error) {
	var buf [proxyV1MaxLen]byte
	if _, err := io.ReadFull(r, buf[:6]); err != nil {
		return nil, fmt.Errorf("reading PROXY header: %w", err)
	}
	switch {
	case bytes.Equal(buf[:6], proxyV1Prefix):
		return readProxyV1(r, buf[:])
	case bytes.Equal(buf[:6], proxyV2Sig[:6]):
		return readProxyV2(r, buf[:])
	}
	return nil, proxyErrorf("no PROXY signature")
}

// readProxyV1 reads the rest of a v1 line into buf (which holds "PROXY ").
// From a TCP socket (Linux) it peeks for the CRLF and reads the line in
// one call. Otherwise it reads the shortest possible rest of each form,
// then byte by byte up to the CRLF (a malformed line shorter than that
// waits for more bytes, until the handshake deadline).
func readProxyV1(r io.Reader, buf []byte) (net.Addr, error) {
	n := 6
	if line, ok, err := peekLineLen(r, buf[n:]); ok {
		if err != nil {
			return nil, fmt.Errorf("reading PROXY v1 header: %w", err)
		}
		if line == 0 {
			return nil, proxyErrorf("v1: no CRLF within %d bytes", proxyV1MaxLen)
		}
		if _, err := io.ReadFull(r, buf[n:n+line]); err != nil {
			return nil, fmt.Errorf("reading PROXY v1 header: %w", err)
		}
		return parseProxyV1(buf[:n+line-2])
	}
	if _, err := io.ReadFull(r, buf[n:n+5]); err != nil {
		return nil, fmt.Errorf("reading PROXY v1 header: %w", err)
	}
	n += 5
	// Shortest rests: "0.0.0.0 0.0.0.0 0 0\r\n", ":: :: 0 0\r\n", "WN\r\n".
	var least int
	switch string(buf[6:11]) {
	case "TCP4 ":
		least = 21
	case "TCP6 ":
		least = 11
	case "UNKNO":
		least = 4
	default:
		return nil, proxyErrorf("v1: unknown protocol %q", buf[6:11])
	}
	if _, err := io.ReadFull(r, buf[n:n+least]); err != nil {
		return nil, fmt.Errorf("reading PROXY v1 header: %w", err)
	}
	n += least
	for !bytes.HasSuffix(buf[:n], []byte("\r\n")) {
		if n == len(buf) {
			return nil, proxyErrorf("v1: no CRLF within %d bytes", proxyV1MaxLen)
		}
		if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
			return nil, fmt.Errorf("reading PROXY v1 header: %w", err)
		}
		n++
	}
	return parseProxyV1(buf[:n-2])
}

// parseProxyV1 parses a v1 line without its CRLF.
func parseProxyV1(line []byte) (net.Addr, error) {
	f := bytes.Split(line, []byte(" "))
	if len(f) >= 2 && string(f[1]) == "UNKNOWN" {
		return nil, nil // the rest of the line is to be ignored
	}
	if len(f) != 6 {
		return nil, proxyErrorf("v1: %d fields, want 6", len(f))
	}
	src, err := netip.ParseAddr(string(f[2]))
	if err != nil {
		return nil, proxyErrorf("v1: source address %q", f[2])
	}
	dst, err := netip.ParseAddr(string(f[3]))
	if err != nil {
		return nil, proxyErrorf("v1: destination address %q", f[3])
	}
	want4 := string(f[1]) == "TCP4"
	if src.Is4() != want4 || dst.Is4() != want4 || src.Zone() != "" {
		return nil, proxyErrorf("v1: addresses do not match %s", f[1])
	}
	sport, err := parsePort(f[4])
	if err != nil {
		return nil, proxyErrorf("v1: source port %q", f[4])
	}
	if _, err := parsePort(f[5]); err != nil {
		return nil, proxyErrorf("v1: destination port %q", f[5])
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, sport)), nil
}

// parsePort parses a decimal port without sign or leading zeros.
func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) || b[0] < '0' || b[0] > '9' {
		return 0, errProxy
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(n), err
}

// readProxyV2 reads the rest of a v2 header; buf holds its first 6 bytes
// and has room for the 16-byte fixed part.
func readProxyV2(r io.Reader, buf []byte) (net.Addr, error) {
	if _, err := io.ReadFull(r, buf[6:proxyV2Header]); err != nil {
		return nil, fmt.Errorf("reading PROXY v2 header: %w", err)
	}
	if !bytes.Equal(buf[:12], proxyV2Sig) {
		return nil, proxyErrorf("v2: bad signature")
	}
	verCmd, famProto := buf[12], buf[13]
	length := int(binary.BigEndian.Uint16(buf[14:16]))
	if verCmd>>4 != 2 {
		return nil, proxyErrorf("v2: version %d", verCmd>>4)
	}
	cmd := verCmd & 0xf
	if cmd > 1 {
		return nil, proxyErrorf("v2: command %d", cmd)
	}
	// Addresses and TLVs: read them whole (at most 64 KiB by the format,
	// bounded further by the handshake deadline), keep the addresses.
	var small [36]byte
	rest := small[:0]
	if length <= len(small) {
		rest = small[:length]
	} else {
		rest = make([]byte, length)
	}
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, fmt.Errorf("reading PROXY v2 addresses: %w", err)
	}
	if cmd == 0 {
		return nil, nil // LOCAL: a health check from the proxy itself
	}
	fam, proto := famProto>>4, famProto&0xf
	if proto > 1 {
		return nil, proxyErrorf("v2: transport %d is not a stream", proto)
	}
	switch fam {
	case 0, 3: // UNSPEC, UNIX: keep the socket's address
		return nil, nil
	case 1:
		if length < 12 {
			return nil, proxyErrorf("v2: %d address bytes for IPv4", length)
		}
		ip := netip.AddrFrom4([4]byte(rest[0:4]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[8:10]))), nil
	case 2:
		if length < 36 {
			return nil, proxyErrorf("v2: %d address bytes for IPv6", length)
		}
		ip := netip.AddrFrom16([16]byte(rest[0:16])).Unmap()
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[32:34]))), nil
	}
	return nil, proxyErrorf("v2: address family %d", fam)
}
