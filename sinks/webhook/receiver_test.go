package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/sinktest"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// object is the JSON object the sink sends per record, as a receiver
// decodes it.
type object struct {
	Rule           string                         `json:"rule"`
	Topic          string                         `json:"topic"`
	ClientID       string                         `json:"client_id"`
	QoS            int                            `json:"qos"`
	ReceivedAt     time.Time                      `json:"received_at"`
	Key            string                         `json:"key"`
	KeyEncoding    string                         `json:"key_encoding"`
	ContentType    string                         `json:"content_type"`
	UserProperties []struct{ Name, Value string } `json:"user_properties"`
	Payload        json.RawMessage                `json:"payload"`
	Encoding       string                         `json:"encoding"`
}

// value returns the record value the object carries.
func (o object) value() ([]byte, error) {
	if o.Encoding == "base64" {
		var s string
		if err := json.Unmarshal(o.Payload, &s); err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(s)
	}
	return []byte(o.Payload), nil
}

func (o object) key() ([]byte, error) {
	if o.KeyEncoding == "base64" {
		return base64.StdEncoding.DecodeString(o.Key)
	}
	return []byte(o.Key), nil
}

// decodeBody parses a request body in any of the three modes.
func decodeBody(contentType string, body []byte) ([]object, error) {
	var objs []object
	switch {
	case contentType == "application/x-ndjson":
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var o object
			if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
				return nil, fmt.Errorf("ndjson line: %w", err)
			}
			objs = append(objs, o)
		}
		return objs, sc.Err()
	case bytes.HasPrefix(body, []byte("[")):
		err := json.Unmarshal(body, &objs)
		return objs, err
	default:
		var o object
		err := json.Unmarshal(body, &o)
		return []object{o}, err
	}
}

// seen is what the receiver saw of one request.
type seen struct {
	method, uri string
	header      http.Header
	body        []byte
	objs        []object
}

// receiver is a webhook endpoint recording what arrives. handle, when
// set, answers instead of 204 (after the request is recorded).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	addr   string
	handle func(w http.ResponseWriter, r *http.Request, body []byte) bool

	mu       sync.Mutex
	reqs     []seen
	msgs     []sinktest.Message
	arrived  chan struct{} // signalled on every recorded request
	inflight int
	maxIn    int
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, arrived: make(chan struct{}, 1)}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.srv.Start()
	rc.addr = rc.srv.Listener.Addr().String()
	t.Cleanup(rc.close)
	return rc
}

func (rc *receiver) url(path string) string { return "http://" + rc.addr + path }

func (rc *receiver) close() {
	if rc.srv != nil {
		rc.srv.CloseClientConnections()
		rc.srv.Close()
		rc.srv = nil
	}
}

// restart brings the receiver back on the same address.
func (rc *receiver) restart() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", rc.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		rc.t.Fatalf("listening again on %s: %v", rc.addr, err)
	}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.srv.Listener.Close()
	rc.srv.Listener = ln
	rc.srv.Start()
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.inflight++
	rc.maxIn = max(rc.maxIn, rc.inflight)
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inflight--
		rc.mu.Unlock()
	}()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rc.handle != nil && rc.handle(w, r, body) {
		return
	}
	objs, err := decodeBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		rc.t.Errorf("receiver: decoding body: %v\n%s", err, body)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, seen{method: r.Method, uri: r.URL.RequestURI(), header: r.Header.Clone(), body: body, objs: objs})
	for _, o := range objs {
		v, verr := o.value()
		k, kerr := o.key()
		if verr != nil || kerr != nil {
			rc.t.Errorf("receiver: decoding object %+v: %v %v", o, verr, kerr)
		}
		rc.msgs = append(rc.msgs, sinktest.Message{Key: k, Value: v})
	}
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// read waits until n messages have arrived.
func (rc *receiver) read(ctx context.Context, n int) ([]sinktest.Message, error) {
	for {
		rc.mu.Lock()
		got := append([]sinktest.Message(nil), rc.msgs...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-rc.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

func (rc *receiver) requests() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}
