package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/testpki"
	"github.com/sluicehq/sluice/sinks/sinktest"
)

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	for _, body := range []string{BodyObject, BodyArray, BodyNDJSON} {
		t.Run(body, func(t *testing.T) {
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) *sinktest.Peer {
					rc := newReceiver(t)
					s := newSink(t, Config{URL: rc.url("/hook"), Body: body, Timeout: 2 * time.Second})
					return &sinktest.Peer{
						Sink: s,
						Read: rc.read,
						Down: func(*testing.T) { rc.close() },
						Up:   func(*testing.T) { rc.restart() },
					}
				},
			})
		})
	}
}

func TestBodyModes(t *testing.T) {
	tests := []struct {
		body        string
		requests    int
		contentType string
	}{
		{body: BodyObject, requests: 6, contentType: "application/json"},
		{body: BodyArray, requests: 1, contentType: "application/json"},
		{body: BodyNDJSON, requests: 1, contentType: "application/x-ndjson"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			rc := newReceiver(t)
			s := newSink(t, Config{URL: rc.url("/in"), Body: tt.body})
			recs := sinktest.Records("", 2, 6, "modes")
			recs[0].Value = []byte("{\n  \"pretty\": true\n}\n")
			recs[1].Key = []byte{0xff, 0x00}
			recs[2].Source.UserProperties = []sinks.UserProperty{{Name: "a", Value: "1"}, {Name: "a", Value: "2"}}
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if len(reqs) != tt.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tt.requests)
			}
			var objs []object
			for _, r := range reqs {
				if ct := r.header.Get("Content-Type"); ct != tt.contentType {
					t.Fatalf("Content-Type %q, want %q", ct, tt.contentType)
				}
				if r.method != http.MethodPost || r.uri != "/in" {
					t.Fatalf("request %s %s", r.method, r.uri)
				}
				objs = append(objs, r.objs...)
			}
			if tt.body == BodyObject {
				// Parallel across keys: compare as a set, keyed by value.
				objs = sortLike(t, objs, recs)
			}
			for i, o := range objs {
				r := recs[i]
				v, _ := o.value()
				k, _ := o.key()
				wantV := string(r.Value)
				if i == 0 {
					wantV = "{   \"pretty\": true }" // line breaks become spaces (the trailing one is cut by the decoder)
				}
				if string(v) != wantV || string(k) != string(r.Key) {
					t.Fatalf("object %d: key %q value %q, want %q %q", i, k, v, r.Key, wantV)
				}
				if o.Topic != r.Source.Topic || o.ClientID != r.Source.ClientID || o.QoS != int(r.Source.QoS) ||
					o.Rule != r.Rule || o.ContentType != r.Source.ContentType || !o.ReceivedAt.Equal(r.Source.ReceivedAt) {
					t.Fatalf("object %d: %+v, want the metadata of %+v", i, o, r)
				}
				if fmt.Sprint(o.UserProperties) != fmt.Sprint(r.Source.UserProperties) {
					t.Fatalf("object %d: user properties %v, want %v", i, o.UserProperties, r.Source.UserProperties)
				}
				wantEnc := ""
				if i%3 != 0 {
					wantEnc = "base64" // text and binary values are not JSON
				}
				if o.Encoding != wantEnc {
					t.Fatalf("object %d: encoding %q, want %q", i, o.Encoding, wantEnc)
				}
			}
		})
	}
}

// sortLike orders objs as the records whose values they carry.
func sortLike(t *testing.T, objs []object, recs []sinks.Record) []object {
	out := make([]object, len(recs))
	for _, o := range objs {
		v, _ := o.value()
		found := false
		for i, r := range recs {
			if string(r.Value) == string(v) || (i == 0 && strings.Contains(string(v), "pretty")) {
				out[i] = o
				found = true
			}
		}
		if !found {
			t.Fatalf("unexpected object %+v", o)
		}
	}
	return out
}

func TestAnswers(t *testing.T) {
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		sleep      time.Duration
		want       string // ok, retryable, permanent, retry-after
		wantAfter  time.Duration
	}{
		{name: "200", status: 200, want: "ok"},
		{name: "204", status: 204, want: "ok"},
		{name: "500", status: 500, want: "retryable"},
		{name: "502", status: 502, want: "retryable"},
		{name: "503 with Retry-After", status: 503, retryAfter: "3", want: "retry-after", wantAfter: 3 * time.Second},
		{name: "408", status: 408, want: "retryable"},
		{name: "429", status: 429, want: "retryable"},
		{name: "429 with Retry-After seconds", status: 429, retryAfter: "7", want: "retry-after", wantAfter: 7 * time.Second},
		{name: "429 with Retry-After date", status: 429, retryAfter: date, want: "retry-after", wantAfter: 30 * time.Second},
		{name: "429 with a huge Retry-After", status: 429, retryAfter: "86400", want: "retry-after", wantAfter: maxRetryAfter},
		{name: "429 with garbage Retry-After", status: 429, retryAfter: "soon", want: "retryable"},
		{name: "400", status: 400, want: "permanent"},
		{name: "401", status: 401, want: "permanent"},
		{name: "404", status: 404, want: "permanent"},
		{name: "413", status: 413, want: "permanent"},
		{name: "redirect not followed", status: 302, want: "permanent"},
		{name: "slow receiver times out", status: 200, sleep: 2 * time.Second, want: "retryable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.sleep > 0 {
					select {
					case <-time.After(tt.sleep):
					case <-r.Context().Done():
					}
				}
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, "answer body")
			}))
			defer srv.Close()
			s := newSink(t, Config{URL: srv.URL, Timeout: 300 * time.Millisecond})
			start := time.Now()
			err := s.Write(context.Background(), sinktest.Records("", 1, 3, "answers"))
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("Write took %s", took)
			}
			var ra *sinks.RetryAfterError
			switch tt.want {
			case "ok":
				if err != nil {
					t.Fatalf("Write = %v, want nil", err)
				}
			case "retryable":
				if err == nil || sinks.IsPermanent(err) || errors.As(err, &ra) {
					t.Fatalf("Write = %v, want a plain retryable error", err)
				}
			case "permanent":
				if !sinks.IsPermanent(err) {
					t.Fatalf("Write = %v, want a permanent error", err)
				}
			case "retry-after":
				if !errors.As(err, &ra) || sinks.IsPermanent(err) {
					t.Fatalf("Write = %v, want a *RetryAfterError", err)
				}
				if d := ra.After - tt.wantAfter; d < -2*time.Second || d > 0 {
					t.Fatalf("After = %s, want about %s", ra.After, tt.wantAfter)
				}
			}
			if err != nil && !strings.Contains(err.Error(), strconv.Itoa(tt.status)) && tt.sleep == 0 {
				t.Fatalf("error %q does not name the status", err)
			}
		})
	}
}

// verify is the receiver-side check documented in sinks/README.md.
func verify(secret []byte, r *http.Request, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(r.Header.Get("X-Sluice-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return errors.New("stale timestamp")
	}
	if r.Header.Get("X-Sluice-Timestamp") != ts {
		return errors.New("timestamp headers disagree")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return errors.New("bad signature")
	}
	return nil
}

func TestSignature(t *testing.T) {
	t.Setenv("SLUICE_TEST_HOOK_SECRET", "whsec-1234")
	tests := []struct {
		name      string
		secret    string // the sink's
		verifyKey string // the receiver's
		clock     time.Duration
		wantErr   string
	}{
		{name: "valid", secret: "${SLUICE_TEST_HOOK_SECRET}", verifyKey: "whsec-1234"},
		{name: "wrong secret", secret: "other", verifyKey: "whsec-1234", wantErr: "bad signature"},
		{name: "stale", secret: "whsec-1234", verifyKey: "whsec-1234", clock: -10 * time.Minute, wantErr: "stale timestamp"},
		{name: "unsigned", verifyKey: "whsec-1234", wantErr: "no timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var verr atomic.Value
			rc := newReceiver(t)
			rc.handle = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				err := verify([]byte(tt.verifyKey), r, body, time.Now(), 5*time.Minute)
				verr.Store(fmt.Sprint(err))
				if err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return true
				}
				return false
			}
			s := newSink(t, Config{URL: rc.url("/"), Secret: tt.secret})
			s.now = func() time.Time { return time.Now().Add(tt.clock) }
			err := s.Write(context.Background(), sinktest.Records("", 2, 4, "sig"))
			got := verr.Load()
			if tt.wantErr == "" {
				if err != nil || got != "<nil>" {
					t.Fatalf("Write = %v, receiver: %v", err, got)
				}
				return
			}
			if got != tt.wantErr || !sinks.IsPermanent(err) {
				t.Fatalf("receiver: %v, Write = %v; want %q and a permanent error", got, err, tt.wantErr)
			}
		})
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
	const want = "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
	if got := Sign([]byte("secret"), "1700000000", []byte(`{"a":1}`)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestHeaders(t *testing.T) {
	t.Setenv("SLUICE_TEST_TOKEN", "tok-42")
	rc := newReceiver(t)
	s := newSink(t, Config{URL: rc.url("/h"), Method: http.MethodPut, Headers: map[string]string{
		"Authorization": "Bearer ${SLUICE_TEST_TOKEN}",
		"X-Static":      "plain $ value",
	}})
	if err := s.Write(context.Background(), sinktest.Records("", 1, 1, "hdr")); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	if r.method != http.MethodPut || r.header.Get("Authorization") != "Bearer tok-42" || r.header.Get("X-Static") != "plain $ value" {
		t.Fatalf("request %s with headers %v", r.method, r.header)
	}
	if _, err := New(Config{URL: rc.url("/"), Headers: map[string]string{"Authorization": "${SLUICE_TEST_UNSET_VAR}"}}, nil); err == nil {
		t.Fatal("New with a header naming an unset variable = nil error")
	}
}

func TestURLTemplate(t *testing.T) {
	rc := newReceiver(t)
	tests := []struct {
		name    string
		url     string
		topic   string
		want    string
		wantErr bool
	}{
		{name: "no topic", url: "/hooks", want: "/hooks"},
		{name: "topic appended", url: "/hooks", topic: "alerts/high", want: "/hooks/alerts/high"},
		{name: "topic appended before query", url: "/hooks/?v=1", topic: "a b", want: "/hooks/a%20b?v=1"},
		{name: "placeholder in path", url: "/t/{topic}/in", topic: "room/1", want: "/t/room/1/in"},
		{name: "placeholder in query", url: "/in?topic={topic}", topic: "room/1&x=2", want: "/in?topic=room%2F1%26x%3D2"},
		{name: "empty topic in placeholder", url: "/t/{topic}", want: "/t/"},
		{name: "dot-dot refused", url: "/t/{topic}", topic: "a/../admin", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rc.requests())
			s := newSink(t, Config{URL: rc.url(tt.url)})
			recs := sinktest.Records(tt.topic, 1, 1, "url")
			err := s.Write(context.Background(), recs)
			if tt.wantErr {
				if !sinks.IsPermanent(err) {
					t.Fatalf("Write = %v, want a permanent error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if len(reqs) != before+1 || reqs[before].uri != tt.want {
				t.Fatalf("requests %d, last uri %q; want %q", len(reqs)-before, reqs[len(reqs)-1].uri, tt.want)
			}
		})
	}
}

func TestRequestsPerURL(t *testing.T) {
	rc := newReceiver(t)
	s := newSink(t, Config{URL: rc.url("/t/{topic}")})
	recs := sinktest.Records("", 2, 10, "per-url")
	for i := range recs {
		recs[i].Topic = fmt.Sprintf("dest%d", i%3)
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range rc.requests() {
		count[r.uri] += len(r.objs)
	}
	if len(count) != 3 || count["/t/dest0"] != 4 || count["/t/dest1"] != 3 || count["/t/dest2"] != 3 {
		t.Fatalf("records per uri %v", count)
	}
}

func TestPartialFailure(t *testing.T) {
	rc := newReceiver(t)
	rc.handle = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		switch {
		case strings.Contains(string(body), `"client_id":"client-1"`):
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return true
		case strings.Contains(string(body), `"client_id":"client-2"`):
			http.Error(w, "bad", http.StatusBadRequest)
			return true
		}
		return false
	}
	s := newSink(t, Config{URL: rc.url("/"), Body: BodyObject})
	recs := sinktest.Records("", 3, 9, "partial")
	err := s.Write(context.Background(), recs)
	var be *sinks.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a *BatchError", err)
	}
	failed := map[int]bool{}
	for _, f := range be.Failed {
		failed[f.Index] = true
		key := string(recs[f.Index].Key)
		if perm := sinks.IsPermanent(f.Err); perm != (key == "client-2") {
			t.Fatalf("record %d (%s): %v, permanent %v", f.Index, key, f.Err, perm)
		}
	}
	for i, r := range recs {
		if failed[i] != (string(r.Key) != "client-0") {
			t.Fatalf("record %d (%s): failed %v", i, r.Key, failed[i])
		}
	}
	// client-1's first failure stops its chain: only one request for it.
	n := 0
	for _, r := range rc.requests() {
		_ = r
		n++
	}
	if n != 3 {
		t.Fatalf("%d successful requests recorded, want 3 (client-0's)", n)
	}
}

func TestMaxConcurrency(t *testing.T) {
	rc := newReceiver(t)
	rc.handle = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		time.Sleep(20 * time.Millisecond)
		return false
	}
	s := newSink(t, Config{URL: rc.url("/"), Body: BodyObject, MaxConcurrency: 3})
	done := make(chan error, 2)
	for w := range 2 { // two lanes share the limit
		go func() { done <- s.Write(context.Background(), sinktest.Records("", 20, 40, fmt.Sprint("lane", w))) }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	rc.mu.Lock()
	maxIn := rc.maxIn
	rc.mu.Unlock()
	if maxIn > 3 || maxIn < 2 {
		t.Fatalf("at most %d requests in flight, want 2..3", maxIn)
	}
}

func TestTLS(t *testing.T) {
	pki := testpki.New(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = pki.ServerConfig(true)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	tests := []struct {
		name    string
		tls     TLSConfig
		wantErr bool
	}{
		{name: "ca and client certificate", tls: TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}},
		{name: "insecure skip verify", tls: TLSConfig{InsecureSkipVerify: true, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}},
		{name: "unknown CA", tls: TLSConfig{CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, wantErr: true},
		{name: "no client certificate", tls: TLSConfig{CAFile: pki.CAFile}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t, Config{URL: srv.URL, TLS: tt.tls, Timeout: 2 * time.Second})
			err := s.Write(context.Background(), sinktest.Records("", 1, 1, "tls"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Write = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && sinks.IsPermanent(err) {
				t.Fatalf("Write = %v: a TLS failure must stay retryable", err)
			}
		})
	}
}
