// Package webhook is the HTTP webhook sink: it sends records as JSON to
// an http or https URL, one request per record or one per batch, signs
// each body with an HMAC when a secret is configured, and classifies each
// answer as success, retryable or permanent. See sinks/README.md for the
// body format, the signature and the error classification.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/outcome"
	"github.com/sluicehq/sluice/sinks/internal/secret"
)

var _ sinks.Sink = (*Sink)(nil)

// Header names set on every request.
const (
	// HeaderSignature carries t=<unix>,v1=<hex HMAC-SHA256> when signing.
	HeaderSignature = "X-Sluice-Signature"
	// HeaderTimestamp carries the unix time the signature covers.
	HeaderTimestamp = "X-Sluice-Timestamp"
)

// maxRetryAfter caps the wait a Retry-After answer can impose, so a
// misbehaving receiver cannot stall a lane for hours.
const maxRetryAfter = 5 * time.Minute

// errClosed is returned by Write after Close.
var errClosed = errors.New("webhook sink is closed")

// Sink sends records to an HTTP endpoint. It is safe for concurrent use.
type Sink struct {
	cfg       Config
	log       *slog.Logger
	url       *urlTemplate
	headers   http.Header
	secret    []byte
	client    *http.Client
	transport *http.Transport
	sem       chan struct{} // bounds requests in flight
	closed    atomic.Bool
	now       func() time.Time
}

// New validates cfg, resolves the ${NAME} references of its headers and
// secret and reads its TLS files. It opens no connection.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	cfg = cfg.withDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring webhook sink: %w", errors.Join(errs...))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tmpl, err := compileURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("configuring webhook sink: %w", err)
	}
	s := &Sink{cfg: cfg, log: log, url: tmpl, headers: http.Header{}, sem: make(chan struct{}, cfg.MaxConcurrency), now: time.Now}
	switch cfg.Body {
	case BodyNDJSON:
		s.headers.Set("Content-Type", "application/x-ndjson")
	default:
		s.headers.Set("Content-Type", "application/json")
	}
	s.headers.Set("User-Agent", "sluice")
	for name, v := range cfg.Headers {
		val, err := secret.Expand(v, os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("configuring webhook sink: headers.%s: %w", name, err)
		}
		s.headers.Set(name, val)
	}
	if cfg.Secret != "" {
		sec, err := secret.Expand(cfg.Secret, os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("configuring webhook sink: secret: %w", err)
		}
		if sec == "" {
			return nil, errors.New("configuring webhook sink: secret: resolves to an empty string")
		}
		s.secret = []byte(sec)
	}
	tc, err := cfg.TLS.files().Load()
	if err != nil {
		return nil, fmt.Errorf("configuring webhook sink tls: %w", err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.MaxIdleConnsPerHost = cfg.MaxConcurrency
	t.ResponseHeaderTimeout = cfg.Timeout
	s.transport = t
	s.client = &http.Client{
		Transport: t,
		Timeout:   cfg.Timeout,
		// A redirect would turn a POST into a GET and drop the body:
		// answers 3xx are errors instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// Close releases idle connections. It is safe to call twice.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.transport.CloseIdleConnections()
	return nil
}

// request is one HTTP request: the records (indexes into the batch) it
// carries and the URL it goes to.
type request struct {
	url string
	idx []int
}

// Write sends batch and reports the outcome of each record. In object
// mode records with the same key are sent one after another, in order;
// all other requests run in parallel up to MaxConcurrency.
func (s *Sink) Write(ctx context.Context, batch []sinks.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing to webhook: %w", err)
	}
	if len(batch) == 0 {
		return nil
	}
	errs := make([]error, len(batch))
	// chains are sent in parallel; the requests of one chain in order.
	var chains [][]request
	chainOf := map[string]int{}
	urls := map[string]string{} // topic -> URL, rendered once per write
	for i := range batch {
		u, ok := urls[batch[i].Topic]
		if !ok {
			var err error
			if u, err = s.url.render(batch[i].Topic); err != nil {
				errs[i] = sinks.Permanent(err)
				continue
			}
			urls[batch[i].Topic] = u
		}
		if s.cfg.Body == BodyObject {
			k := string(batch[i].Key)
			c, ok := chainOf[k]
			if !ok {
				c = len(chains)
				chainOf[k] = c
				chains = append(chains, nil)
			}
			chains[c] = append(chains[c], request{url: u, idx: []int{i}})
			continue
		}
		c, ok := chainOf[u]
		if !ok {
			c = len(chains)
			chainOf[u] = c
			chains = append(chains, []request{{url: u}})
		}
		chains[c][0].idx = append(chains[c][0].idx, i)
	}
	work := make(chan []request, len(chains))
	for _, c := range chains {
		work <- c
	}
	close(work)
	var wg sync.WaitGroup
	for range min(len(chains), s.cfg.MaxConcurrency) {
		wg.Go(func() {
			for chain := range work {
				s.sendChain(ctx, batch, chain, errs)
			}
		})
	}
	wg.Wait()
	return outcome.Result(errs)
}

// sendChain sends requests in order. After a retryable failure the rest
// are not sent (and reported failed), so a retry keeps their order.
func (s *Sink) sendChain(ctx context.Context, batch []sinks.Record, chain []request, errs []error) {
	for k, req := range chain {
		err := s.send(ctx, batch, req)
		for _, i := range req.idx {
			errs[i] = err
		}
		if err == nil || sinks.IsPermanent(err) {
			continue
		}
		skipped := fmt.Errorf("not sent after an earlier record with the same key failed: %w", err)
		for _, rest := range chain[k+1:] {
			for _, i := range rest.idx {
				errs[i] = skipped
			}
		}
		return
	}
}

// send encodes and sends one request and classifies the answer.
func (s *Sink) send(ctx context.Context, batch []sinks.Record, req request) error {
	body := s.encode(batch, req.idx)
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sending to %s: %w", req.url, ctx.Err())
	}
	defer func() { <-s.sem }()
	hr, err := http.NewRequestWithContext(ctx, s.cfg.Method, req.url, bytes.NewReader(body))
	if err != nil {
		return sinks.Permanent(fmt.Errorf("building request to %s: %w", req.url, err))
	}
	for k, v := range s.headers {
		hr.Header[k] = v
	}
	if s.secret != nil {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		hr.Header.Set(HeaderTimestamp, ts)
		hr.Header.Set(HeaderSignature, Sign(s.secret, ts, body))
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("sending to %s: %w", req.url, ctx.Err())
		}
		return fmt.Errorf("sending to %s: %w", req.url, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Drain (a bounded amount) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return Classify(resp.StatusCode, resp.Header.Get("Retry-After"), s.now(),
		fmt.Errorf("sending to %s: %s: %s", req.url, resp.Status, bytes.TrimSpace(snippet)))
}

// encode builds the body of a request carrying the records at idx.
func (s *Sink) encode(batch []sinks.Record, idx []int) []byte {
	size := 2
	for _, i := range idx {
		size += 256 + len(batch[i].Value)*4/3
	}
	b := make([]byte, 0, size)
	switch s.cfg.Body {
	case BodyObject:
		return appendRecord(b, &batch[idx[0]])
	case BodyNDJSON:
		for _, i := range idx {
			b = appendRecord(b, &batch[i])
			b = append(b, '\n')
		}
		return b
	}
	b = append(b, '[')
	for n, i := range idx {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendRecord(b, &batch[i])
	}
	return append(b, ']')
}

// Sign returns the X-Sluice-Signature value for body sent at unix time
// ts: "t=<ts>,v1=<hex HMAC-SHA256(secret, ts + "." + body)>".
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Classify maps an HTTP answer to Write's error: nil for 2xx; retryable
// for 5xx, 408 and 429 (a *sinks.RetryAfterError when Retry-After says
// how long to wait, capped at 5 minutes); permanent for everything else
// (other 4xx, unfollowed 3xx). err describes the answer.
func Classify(status int, retryAfter string, now time.Time, err error) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusTooManyRequests || status >= 500 || status == http.StatusRequestTimeout:
		if d, ok := parseRetryAfter(retryAfter, now); ok && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
			return &sinks.RetryAfterError{After: d, Err: err}
		}
		return err
	}
	return sinks.Permanent(err)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}
