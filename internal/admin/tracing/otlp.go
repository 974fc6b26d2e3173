package tracing

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Exporter limits: spans wait in a bounded queue and leave in batches.
const (
	queueSpans    = 4096
	batchSpans    = 512
	flushInterval = time.Second
	exportTimeout = 10 * time.Second
	finalTimeout  = 2 * time.Second
)

// span is one finished span.
type span struct {
	trace      [16]byte
	id, parent [8]byte // parent zero: a root span
	name       string
	kind       int // OTLP SpanKind: 1 internal, 5 consumer
	start, end time.Time
	attrs      []attr
	err        string // non-empty: status ERROR with this message
}

// attr is a span attribute: a string or an int64 value.
type attr struct {
	key   string
	str   string
	num   int64
	isNum bool
}

func str(k, v string) attr     { return attr{key: k, str: v} }
func num(k string, v int) attr { return attr{key: k, num: int64(v), isNum: true} }

// exporter sends spans to an OTLP/HTTP receiver as JSON. Spans are best
// effort: a full queue or a failed export drops them (counted), nothing is
// retried, and nothing waits on the receiver but the exporter goroutine.
type exporter struct {
	url     string
	headers map[string]string
	service string
	client  *http.Client
	log     *slog.Logger
	queue   chan span

	exported prometheus.Counter
	dropped  *prometheus.CounterVec
}

func newExporter(cfg Config, log *slog.Logger) *exporter {
	return &exporter{
		url: cfg.Endpoint + "/v1/traces", headers: cfg.Headers, service: cfg.ServiceName,
		client: &http.Client{Timeout: exportTimeout}, log: log, queue: make(chan span, queueSpans),
		exported: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_tracing_spans_exported_total",
			Help: "Spans accepted by the OTLP receiver."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tracing_spans_dropped_total",
			Help: "Spans not exported, by reason (queue_full, export_failed)."}, []string{"reason"}),
	}
}

// add queues s without blocking; a full queue drops it.
func (e *exporter) add(s span) {
	select {
	case e.queue <- s:
	default:
		e.dropped.WithLabelValues("queue_full").Inc()
	}
}

// run exports batches until ctx ends, then what is queued, once.
func (e *exporter) run(ctx context.Context) {
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	batch := make([]span, 0, batchSpans)
	failing := false
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		err := e.export(ctx, batch)
		switch {
		case err != nil:
			e.dropped.WithLabelValues("export_failed").Add(float64(len(batch)))
			if !failing {
				e.log.Warn("exporting spans; dropping them until the receiver answers", "spans", len(batch), "err", err)
			}
			failing = true
		default:
			e.exported.Add(float64(len(batch)))
			if failing {
				e.log.Info("exporting spans again")
			}
			failing = false
		}
		batch = batch[:0]
	}
	for {
		select {
		case s := <-e.queue:
			batch = append(batch, s)
			if len(batch) == batchSpans {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			defer cancel()
		drain:
			for {
				select {
				case s := <-e.queue:
					batch = append(batch, s)
					if len(batch) == batchSpans {
						flush(fctx)
					}
				default:
					break drain
				}
			}
			flush(fctx)
			return
		}
	}
}

// export POSTs one batch.
func (e *exporter) export(ctx context.Context, batch []span) error {
	body, err := json.Marshal(e.encode(batch))
	if err != nil {
		return fmt.Errorf("encoding spans: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building export request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting spans to %s: %w", e.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("posting spans to %s: %s: %s", e.url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// OTLP/HTTP JSON (opentelemetry-proto, JSON mapping: ids in hex, 64-bit
// integers as strings).
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpAttr `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope otlpScope  `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpScope struct {
		Name string `json:"name"`
	}
	otlpSpan struct {
		TraceID      string      `json:"traceId"`
		SpanID       string      `json:"spanId"`
		ParentSpanID string      `json:"parentSpanId,omitempty"`
		Name         string      `json:"name"`
		Kind         int         `json:"kind"`
		Start        string      `json:"startTimeUnixNano"`
		End          string      `json:"endTimeUnixNano"`
		Attributes   []otlpAttr  `json:"attributes,omitempty"`
		Status       *otlpStatus `json:"status,omitempty"`
	}
	otlpAttr struct {
		Key   string    `json:"key"`
		Value otlpValue `json:"value"`
	}
	otlpValue struct {
		String *string `json:"stringValue,omitempty"`
		Int    *string `json:"intValue,omitempty"`
	}
	otlpStatus struct {
		Code    int    `json:"code"` // 1 OK, 2 ERROR
		Message string `json:"message,omitempty"`
	}
)

func (e *exporter) encode(batch []span) otlpRequest {
	spans := make([]otlpSpan, len(batch))
	for i, s := range batch {
		o := otlpSpan{
			TraceID: hex.EncodeToString(s.trace[:]), SpanID: hex.EncodeToString(s.id[:]), Name: s.name, Kind: s.kind,
			Start: strconv.FormatInt(s.start.UnixNano(), 10), End: strconv.FormatInt(s.end.UnixNano(), 10),
		}
		if s.parent != ([8]byte{}) {
			o.ParentSpanID = hex.EncodeToString(s.parent[:])
		}
		for _, a := range s.attrs {
			o.Attributes = append(o.Attributes, toAttr(a))
		}
		if s.err != "" {
			o.Status = &otlpStatus{Code: 2, Message: s.err}
		}
		spans[i] = o
	}
	return otlpRequest{ResourceSpans: []otlpResourceSpans{{
		Resource:   otlpResource{Attributes: []otlpAttr{toAttr(str("service.name", e.service))}},
		ScopeSpans: []otlpScopeSpans{{Scope: otlpScope{Name: "github.com/sluicehq/sluice"}, Spans: spans}},
	}}}
}

func toAttr(a attr) otlpAttr {
	if a.isNum {
		v := strconv.FormatInt(a.num, 10)
		return otlpAttr{Key: a.key, Value: otlpValue{Int: &v}}
	}
	v := a.str
	return otlpAttr{Key: a.key, Value: otlpValue{String: &v}}
}
