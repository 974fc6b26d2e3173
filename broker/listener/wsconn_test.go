package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// clientFrame encodes a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	return rawFrame(fin, op, payload, true, 0)
}

// rawFrame encodes a frame; rsv is OR-ed into the first byte.
func rawFrame(fin bool, op byte, payload []byte, masked bool, rsv byte) []byte {
	b0 := op | rsv
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mbit|byte(n))
	case n <= 0xffff:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// serverFrame is a frame read from the server.
type serverFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// readServerFrame reads one unmasked frame.
func readServerFrame(r io.Reader) (serverFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return serverFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return serverFrame{}, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return serverFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, payload: p}, err
}

// wsPair returns a server-side wsConn and the client's socket, over
// loopback TCP (no HTTP handshake).
func wsPair(t *testing.T) (*wsConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ws := newWSConn(server, nil)
	t.Cleanup(func() { client.Close(); ws.Close() })
	client.SetDeadline(time.Now().Add(5 * time.Second))
	server.SetDeadline(time.Now().Add(5 * time.Second))
	return ws, client
}

func TestWSConnStream(t *testing.T) {
	big := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 10000) // 64-bit length
	mid := bytes.Repeat([]byte("m"), 300)                   // 16-bit length
	tests := []struct {
		name   string
		frames [][]byte
		want   []byte
		pongs  []string
	}{
		{"one frame", [][]byte{clientFrame(true, opBinary, []byte("hello"))}, []byte("hello"), nil},
		{"messages back to back", [][]byte{clientFrame(true, opBinary, []byte("ab")), clientFrame(true, opBinary, []byte("cd"))},
			[]byte("abcd"), nil},
		{"fragments with a ping between", [][]byte{
			clientFrame(false, opBinary, []byte("ab")),
			clientFrame(true, opPing, []byte("hi")),
			clientFrame(false, opContinuation, []byte("cd")),
			clientFrame(true, opPong, []byte("ignored")),
			clientFrame(true, opContinuation, []byte("ef")),
		}, []byte("abcdef"), []string{"hi"}},
		{"empty frames", [][]byte{clientFrame(true, opBinary, nil), clientFrame(false, opBinary, nil),
			clientFrame(true, opContinuation, []byte("x"))}, []byte("x"), nil},
		{"16-bit length", [][]byte{clientFrame(true, opBinary, mid)}, mid, nil},
		{"64-bit length", [][]byte{clientFrame(true, opBinary, big)}, big, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, client := wsPair(t)
			go client.Write(bytes.Join(tt.frames, nil))
			got := make([]byte, len(tt.want))
			if _, err := io.ReadFull(ws, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("read %q, want %q", got, tt.want)
			}
			for _, want := range tt.pongs {
				f, err := readServerFrame(client)
				if err != nil || f.op != opPong || string(f.payload) != want {
					t.Fatalf("got frame %+v, %v; want pong %q", f, err, want)
				}
			}
		})
	}
}

func TestWSConnWrite(t *testing.T) {
	ws, client := wsPair(t)
	for _, n := range []int{0, 5, 125, 126, 4096, 4097, 65535, 65536, 200000} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		go ws.Write(p)
		f, err := readServerFrame(client)
		if err != nil || !f.fin || f.op != opBinary || !bytes.Equal(f.payload, p) {
			t.Fatalf("%d bytes: frame fin=%v op=%d len=%d, %v", n, f.fin, f.op, len(f.payload), err)
		}
	}
}

func TestWSConnProtocolErrors(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		code  uint16
	}{
		{"text frame", clientFrame(true, opText, []byte("hi")), closeUnsupported},
		{"unmasked", rawFrame(true, opBinary, []byte("hi"), false, 0), closeProtocol},
		{"reserved bit", rawFrame(true, opBinary, []byte("hi"), true, 0x40), closeProtocol},
		{"reserved opcode", clientFrame(true, 0x3, nil), closeProtocol},
		{"continuation first", clientFrame(true, opContinuation, []byte("x")), closeProtocol},
		{"binary inside a message", append(clientFrame(false, opBinary, []byte("a")), clientFrame(true, opBinary, []byte("b"))...), closeProtocol},
		{"fragmented ping", clientFrame(false, opPing, nil), closeProtocol},
		{"oversized control", clientFrame(true, opPing, make([]byte, 126)), closeProtocol},
		{"close with one byte", clientFrame(true, opClose, []byte{3}), closeProtocol},
		{"length with top bit", append([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, 1, 2, 3, 4), closeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, client := wsPair(t)
			go client.Write(tt.input)
			buf := make([]byte, 64)
			var err error
			for err == nil {
				_, err = ws.Read(buf)
			}
			var pe *wsProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("Read error %v, want a protocol error", err)
			}
			if _, again := ws.Read(buf); again != err {
				t.Errorf("second Read = %v, want the same error", again)
			}
			f, ferr := readServerFrame(client)
			if ferr != nil || f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != tt.code {
				t.Errorf("got frame %+v, %v; want close %d", f, ferr, tt.code)
			}
			if _, err := ws.Write([]byte("x")); !errors.Is(err, ErrWebSocketClosed) {
				t.Errorf("Write after close frame: %v", err)
			}
		})
	}
}

func TestWSConnClose(t *testing.T) {
	t.Run("client closes", func(t *testing.T) {
		ws, client := wsPair(t)
		client.Write(append(clientFrame(true, opBinary, []byte("bye")), clientFrame(true, opClose, []byte{0x03, 0xe8, 'o', 'k'})...))
		buf := make([]byte, 3)
		if _, err := io.ReadFull(ws, buf); err != nil || string(buf) != "bye" {
			t.Fatalf("read %q, %v", buf, err)
		}
		_, err := ws.Read(buf)
		if !errors.Is(err, io.EOF) || !errors.Is(err, ErrWebSocketClosed) {
			t.Fatalf("Read after close = %v, want io.EOF and ErrWebSocketClosed", err)
		}
		f, err := readServerFrame(client)
		if err != nil || f.op != opClose || binary.BigEndian.Uint16(f.payload) != 1000 {
			t.Fatalf("reply %+v, %v; want close 1000", f, err)
		}
	})
	t.Run("server closes", func(t *testing.T) {
		ws, client := wsPair(t)
		ws.Close()
		f, err := readServerFrame(client)
		if err != nil || f.op != opClose || binary.BigEndian.Uint16(f.payload) != 1000 {
			t.Fatalf("got %+v, %v; want close 1000", f, err)
		}
		if _, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("after close frame: %v, want EOF", err)
		}
		if err := ws.Close(); err == nil {
			t.Error("second Close returned nil, want the socket's already-closed error")
		}
	})
	t.Run("socket ends inside a frame", func(t *testing.T) {
		ws, client := wsPair(t)
		f := clientFrame(true, opBinary, []byte("truncated"))
		client.Write(f[:len(f)-3])
		client.Close()
		_, err := io.ReadAll(ws)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("socket ends between frames", func(t *testing.T) {
		ws, client := wsPair(t)
		client.Write(clientFrame(true, opBinary, []byte("ok")))
		client.Close()
		got, err := io.ReadAll(ws)
		if err != nil || string(got) != "ok" {
			t.Fatalf("got %q, %v; want ok and EOF", got, err)
		}
	})
}

// TestWSConnDeadlineResume splits frames at every byte and lets a read
// deadline pass at each split: the broker's reader relies on reading on
// after a timeout.
func TestWSConnDeadlineResume(t *testing.T) {
	input := bytes.Join([][]byte{
		clientFrame(false, opBinary, []byte("abc")),
		clientFrame(true, opPing, []byte("p")),
		clientFrame(true, opContinuation, bytes.Repeat([]byte("z"), 130)),
	}, nil)
	want := "abc" + string(bytes.Repeat([]byte("z"), 130))
	ws, client := wsPair(t)
	var got []byte
	buf := make([]byte, 7)
	for i := range input {
		client.Write(input[i : i+1])
		for {
			ws.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			n, err := ws.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("byte %d: %v", i, err)
				}
				break
			}
		}
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	if f, err := readServerFrame(client); err != nil || f.op != opPong || string(f.payload) != "p" {
		t.Fatalf("got %+v, %v; want pong", f, err)
	}
}

// fakeConn is a net.Conn reading from a fixed input and discarding writes.
type fakeConn struct {
	net.Conn
	r io.Reader
}

func (c *fakeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *fakeConn) Close() error                { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error {
	return nil
}

func FuzzWSConnRead(f *testing.F) {
	f.Add(clientFrame(true, opBinary, []byte("hello")), 3)
	f.Add(bytes.Join([][]byte{clientFrame(false, opBinary, []byte("ab")), clientFrame(true, opPing, []byte("x")),
		clientFrame(true, opContinuation, []byte("cd"))}, nil), 1)
	f.Add(clientFrame(true, opClose, []byte{3, 232}), 8)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 || chunk > 1<<16 {
			chunk = 1
		}
		ws := newWSConn(&fakeConn{r: bytes.NewReader(data)}, nil)
		buf := make([]byte, chunk)
		total := 0
		for {
			n, err := ws.Read(buf)
			total += n
			if total > len(data) {
				t.Fatalf("read %d payload bytes from %d input bytes", total, len(data))
			}
			if err != nil {
				break
			}
		}
	})
}
