package listener

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// maxUpgradeRequest bounds the bytes read for the HTTP upgrade request.
const maxUpgradeRequest = 8 << 10

// subprotocols are the WebSocket subprotocols accepted, by MQTT version:
// "mqtt" (3.1.1 and 5.0) and "mqttv3.1" (3.1).
var subprotocols = []string{"mqtt", "mqttv3.1"}

// wsGUID is RFC 6455's magic value for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// errRequestTooLarge ends an upgrade request over maxUpgradeRequest.
var errRequestTooLarge = fmt.Errorf("websocket upgrade request over %d bytes", maxUpgradeRequest)

// limitReader is io.LimitReader with an error of its own at the limit
// (io.EOF would look like a client that left).
type limitReader struct {
	r io.Reader
	n int
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errRequestTooLarge
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

// upgradeError is a refused upgrade request, answered with status.
type upgradeError struct {
	status int
	msg    string
	extra  string // additional response header lines
}

func (e *upgradeError) Error() string {
	return fmt.Sprintf("websocket upgrade refused (%d): %s", e.status, e.msg)
}

// upgradeWebSocket reads the HTTP upgrade request from c, checks it and
// answers 101 (or an error status). It returns the negotiated subprotocol
// and any bytes the client sent after the request.
func upgradeWebSocket(c net.Conn, path string) (proto string, rest []byte, err error) {
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(&limitReader{r: c, n: maxUpgradeRequest})
	defer func() {
		br.Reset(nil)
		bufioPool.Put(br)
	}()
	// Fail fast on a client that speaks MQTT (or TLS) to a WebSocket
	// port: a request line starts with an upper-case method.
	if b, err := br.Peek(1); err != nil {
		return "", nil, fmt.Errorf("reading websocket upgrade request: %w", err)
	} else if b[0] < 'A' || b[0] > 'Z' {
		return "", nil, fmt.Errorf("reading websocket upgrade request: first byte %#x is not HTTP", b[0])
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", nil, fmt.Errorf("reading websocket upgrade request: %w", err)
	}
	accept, proto, err := checkUpgrade(req, path)
	if err != nil {
		var ue *upgradeError
		if errors.As(err, &ue) {
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nConnection: close\r\n%sContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
				ue.status, http.StatusText(ue.status), ue.extra, len(ue.msg), ue.msg)
		}
		return "", nil, err
	}
	if n := br.Buffered(); n > 0 {
		rest = make([]byte, n)
		br.Read(rest)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + accept + "\r\nSec-WebSocket-Protocol: " + proto + "\r\n\r\n"
	if _, err := io.WriteString(c, resp); err != nil {
		return "", nil, fmt.Errorf("writing websocket upgrade response: %w", err)
	}
	return proto, rest, nil
}

// checkUpgrade validates an RFC 6455 opening handshake and returns the
// Sec-WebSocket-Accept value and the chosen subprotocol.
func checkUpgrade(req *http.Request, path string) (accept, proto string, err error) {
	refuse := func(status int, msg string) (string, string, error) {
		return "", "", &upgradeError{status: status, msg: msg}
	}
	if req.Method != http.MethodGet {
		return refuse(http.StatusMethodNotAllowed, "websocket upgrade needs GET")
	}
	if req.URL.Path != path {
		return refuse(http.StatusNotFound, "no websocket endpoint at "+req.URL.Path)
	}
	if !hasToken(req.Header, "Connection", "upgrade") || !hasToken(req.Header, "Upgrade", "websocket") {
		return refuse(http.StatusBadRequest, "not a websocket upgrade request")
	}
	if req.Header.Get("Sec-WebSocket-Version") != "13" {
		return "", "", &upgradeError{status: http.StatusUpgradeRequired,
			msg: "websocket version 13 required", extra: "Sec-WebSocket-Version: 13\r\n"}
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return refuse(http.StatusBadRequest, "bad Sec-WebSocket-Key")
	}
	proto = chooseSubprotocol(req.Header.Values("Sec-WebSocket-Protocol"))
	if proto == "" {
		return refuse(http.StatusBadRequest, "websocket subprotocol mqtt required")
	}
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:]), proto, nil
}

// chooseSubprotocol returns the first offered subprotocol we accept.
func chooseSubprotocol(offers []string) string {
	for _, line := range offers {
		for p := range strings.SplitSeq(line, ",") {
			p = strings.TrimSpace(p)
			for _, ok := range subprotocols {
				if p == ok {
					return ok
				}
			}
		}
	}
	return ""
}

// hasToken reports whether a comma-separated header holds token
// (case-insensitively).
func hasToken(h http.Header, name, token string) bool {
	for _, line := range h.Values(name) {
		for t := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
