// Package kafka is the Kafka sink: it produces each record to a topic
// partition chosen from its key with the Java client's murmur2 hash, so
// Sluice's partitioning matches other producers'. It sends what the runner
// hands it at once, one produce request per partition in parallel, without
// a linger of its own, and reports the outcome of every record. See
// sinks/README.md for the configuration and the error classification.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/outcome"
	"github.com/sluicehq/sluice/sinks/internal/secret"
)

var _ sinks.Sink = (*Sink)(nil)
var _ sinks.Connector = (*Sink)(nil)

// errClosed is returned by Write after Close.
var errClosed = errors.New("kafka sink is closed")

// Sink produces records to Kafka. It is safe for concurrent use.
type Sink struct {
	cfg       Config
	log       *slog.Logger
	transport *kafkago.Transport
	client    *kafkago.Client
	acks      kafkago.RequiredAcks
	codec     kafkago.Compression
	balancer  kafkago.Murmur2Balancer
	stop      context.CancelFunc // ends the transport's background goroutines
	closed    atomic.Bool
}

// New validates cfg and builds a sink. It reads the TLS files named by
// cfg but opens no connection.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	cfg = cfg.withDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring kafka sink: %w", errors.Join(errs...))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bg, stop := context.WithCancel(context.Background())
	t := &kafkago.Transport{
		DialTimeout: cfg.DialTimeout,
		MetadataTTL: cfg.MetadataTTL,
		ClientID:    cfg.ClientID,
		Context:     bg,
	}
	if cfg.TLS.Enabled {
		tc, err := cfg.TLS.Files().Load()
		if err != nil {
			stop()
			return nil, fmt.Errorf("configuring kafka sink tls: %w", err)
		}
		t.TLS = tc
	}
	mech, err := cfg.SASL.Load()
	if err != nil {
		stop()
		return nil, fmt.Errorf("configuring kafka sink sasl: %w", err)
	}
	t.SASL = mech
	s := &Sink{
		cfg:       cfg,
		log:       log,
		transport: t,
		client:    &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: t, Timeout: cfg.WriteTimeout},
		stop:      stop,
	}
	switch cfg.RequiredAcks {
	case "all":
		s.acks = kafkago.RequireAll
	case "one":
		s.acks = kafkago.RequireOne
	case "none":
		s.acks = kafkago.RequireNone
	}
	switch cfg.Compression {
	case "gzip":
		s.codec = kafkago.Gzip
	case "snappy":
		s.codec = kafkago.Snappy
	case "lz4":
		s.codec = kafkago.Lz4
	case "zstd":
		s.codec = kafkago.Zstd
	}
	return s, nil
}

// Load returns the SASL mechanism c describes (nil when Mechanism is
// empty), its password's ${NAME} references read from the environment.
// Other Kafka clients of Sluice (the command source) use it too.
func (c SASLConfig) Load() (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	pass, err := secret.Expand(c.Password, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	switch c.Mechanism {
	case "plain":
		return plain.Mechanism{Username: c.Username, Password: pass}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, c.Username, pass)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, c.Username, pass)
	}
	return nil, fmt.Errorf("unknown mechanism %q", c.Mechanism)
}

// Connect fetches the cluster's metadata, which proves the brokers are
// reachable and accept the TLS and SASL settings, and checks that the
// default topic exists (or creates it, with AutoCreateTopics).
func (s *Sink) Connect(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	var topics []string
	if s.cfg.Topic != "" {
		topics = []string{s.cfg.Topic}
	}
	parts, err := s.partitions(ctx, topics)
	if err != nil {
		s.reset(err)
		return fmt.Errorf("connecting to kafka %v: %w", s.cfg.Brokers, err)
	}
	if p, ok := parts[s.cfg.Topic]; ok && p.err != nil {
		return fmt.Errorf("connecting to kafka: default topic %s: %w", s.cfg.Topic, p.err)
	}
	return nil
}

// Close releases the connections. It is safe to call twice.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	s.transport.CloseIdleConnections()
	return nil
}

// topicMeta is what a write needs of a topic's metadata.
type topicMeta struct {
	partitions []int // partition ids, ascending
	err        error
}

// partitions looks topics up in the transport's metadata cache (a
// request to the cluster when the cache is cold or a topic is created).
func (s *Sink) partitions(ctx context.Context, topics []string) (map[string]topicMeta, error) {
	r, err := s.transport.RoundTrip(ctx, s.client.Addr, &metadataAPI.Request{
		TopicNames:             topics,
		AllowAutoTopicCreation: s.cfg.AutoCreateTopics,
	})
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	res, ok := r.(*metadataAPI.Response)
	if !ok {
		return nil, fmt.Errorf("fetching metadata: unexpected response %T", r)
	}
	out := make(map[string]topicMeta, len(res.Topics))
	for _, t := range res.Topics {
		m := topicMeta{}
		switch {
		case t.ErrorCode != 0:
			m.err = kafkago.Error(t.ErrorCode)
		case len(t.Partitions) == 0:
			m.err = kafkago.LeaderNotAvailable
		default:
			m.partitions = make([]int, len(t.Partitions))
			for i, p := range t.Partitions {
				m.partitions[i] = int(p.PartitionIndex)
			}
			slices.Sort(m.partitions)
		}
		out[t.Name] = m
	}
	for _, t := range topics {
		if _, ok := out[t]; !ok {
			out[t] = topicMeta{err: kafkago.UnknownTopicOrPartition}
		}
	}
	return out, nil
}

// chunk is the records of one produce request: one topic partition.
type chunk struct {
	topic     string
	partition int
	idx       []int // indexes into the batch
}

// Write produces batch and reports which records failed (see Classify).
func (s *Sink) Write(ctx context.Context, batch []sinks.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing to kafka: %w", err)
	}
	if len(batch) == 0 {
		return nil
	}
	errs := make([]error, len(batch))
	byTopic := map[string][]int{}
	var topics []string
	for i := range batch {
		t := batch[i].Topic
		if t == "" {
			t = s.cfg.Topic
		}
		if t == "" {
			errs[i] = sinks.Permanent(errors.New("record has no topic and the sink has no default topic"))
			continue
		}
		if err := validTopic(t); err != nil {
			errs[i] = sinks.Permanent(err)
			continue
		}
		if _, ok := byTopic[t]; !ok {
			topics = append(topics, t)
		}
		byTopic[t] = append(byTopic[t], i)
	}
	var chunks []chunk
	if len(topics) > 0 {
		meta, err := s.partitions(ctx, topics)
		if err != nil {
			s.reset(err)
			return Classify(fmt.Errorf("writing to kafka: %w", err))
		}
		for _, t := range topics {
			m := meta[t]
			if m.err != nil {
				s.reset(m.err)
				err := Classify(fmt.Errorf("writing to kafka topic %s: %w", t, m.err))
				for _, i := range byTopic[t] {
					errs[i] = err
				}
				continue
			}
			chunks = s.assign(chunks, batch, t, m.partitions, byTopic[t])
		}
	}
	// One goroutine per partition, sending that partition's chunks in
	// order; partitions proceed in parallel.
	var wg sync.WaitGroup
	for start := 0; start < len(chunks); {
		end := start + 1
		for end < len(chunks) && chunks[end].topic == chunks[start].topic && chunks[end].partition == chunks[start].partition {
			end++
		}
		part := chunks[start:end]
		wg.Go(func() { s.producePartition(ctx, batch, part, errs) })
		start = end
	}
	wg.Wait()
	return outcome.Result(errs)
}

// producePartition sends one partition's chunks in order. After a
// retryable failure the later chunks are not sent (they are reported
// failed too), so a retry cannot put them ahead of the failed ones.
func (s *Sink) producePartition(ctx context.Context, batch []sinks.Record, chunks []chunk, errs []error) {
	for k, c := range chunks {
		s.produce(ctx, batch, c, errs)
		var failed error
		for _, i := range c.idx {
			if errs[i] != nil && !sinks.IsPermanent(errs[i]) {
				failed = errs[i]
				break
			}
		}
		if failed == nil {
			continue
		}
		skipped := fmt.Errorf("not sent after an earlier request to %s/%d failed: %w", c.topic, c.partition, failed)
		for _, rest := range chunks[k+1:] {
			for _, i := range rest.idx {
				errs[i] = skipped
			}
		}
		return
	}
}

// assign spreads idx over the topic's partitions by key and splits each
// partition's records into chunks within the request limits.
func (s *Sink) assign(chunks []chunk, batch []sinks.Record, topic string, parts []int, idx []int) []chunk {
	byPart := make(map[int][]int, len(parts))
	var order []int
	for _, i := range idx {
		var p int
		if len(parts) == 1 {
			p = parts[0]
		} else {
			p = s.balancer.Balance(kafkago.Message{Key: batch[i].Key}, parts...)
		}
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], i)
	}
	for _, p := range order {
		cur := chunk{topic: topic, partition: p}
		size := 0
		for _, i := range byPart[p] {
			n := recordSize(&batch[i])
			if len(cur.idx) > 0 && (len(cur.idx) >= s.cfg.BatchMaxRecords || size+n > s.cfg.BatchMaxBytes) {
				chunks = append(chunks, cur)
				cur = chunk{topic: topic, partition: p}
				size = 0
			}
			cur.idx = append(cur.idx, i)
			size += n
		}
		chunks = append(chunks, cur)
	}
	return chunks
}

// recordSize approximates a record's encoded size.
func recordSize(r *sinks.Record) int {
	n := 24 + len(r.Key) + len(r.Value) + len(r.Source.Topic) + len(r.Source.ClientID) + len(r.Source.ContentType) + 64
	for _, p := range r.Source.UserProperties {
		n += len(p.Name) + len(p.Value) + 4
	}
	return n
}

// produce sends one chunk and stores each record's outcome in errs. A
// chunk the broker finds too large is split in two and retried at once.
func (s *Sink) produce(ctx context.Context, batch []sinks.Record, c chunk, errs []error) {
	res, err := s.client.Produce(ctx, &kafkago.ProduceRequest{
		Topic:        c.topic,
		Partition:    c.partition,
		RequiredAcks: s.acks,
		Compression:  s.codec,
		Records:      newRecords(batch, c.idx),
	})
	if err == nil && res != nil {
		err = res.Error
	}
	if err == nil {
		return
	}
	if len(c.idx) > 1 && (errors.Is(err, kafkago.MessageSizeTooLarge) || errors.Is(err, kafkago.RecordListTooLarge)) {
		half := len(c.idx) / 2
		a, b := c, c
		a.idx, b.idx = c.idx[:half], c.idx[half:]
		s.produce(ctx, batch, a, errs)
		s.produce(ctx, batch, b, errs)
		return
	}
	s.reset(err)
	werr := Classify(fmt.Errorf("producing to kafka %s/%d: %w", c.topic, c.partition, err))
	if res != nil && len(res.RecordErrors) > 0 {
		// The broker rejected the batch because of these records; the
		// others were fine and are retried.
		werr = fmt.Errorf("producing to kafka %s/%d: batch rejected because of other records: %w", c.topic, c.partition, err)
	}
	for j, i := range c.idx {
		if rerr := recordError(res, j); rerr != nil {
			errs[i] = sinks.Permanent(fmt.Errorf("producing to kafka %s/%d: %w", c.topic, c.partition, rerr))
			continue
		}
		errs[i] = werr
	}
}
