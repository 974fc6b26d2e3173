package kafka

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/sinks"
)

// Header names carrying the MQTT metadata of a record.
const (
	HeaderMQTTTopic   = "mqtt_topic"
	HeaderClientID    = "client_id"
	HeaderQoS         = "qos"
	HeaderContentType = "content_type"
)

var qosValues = [3][]byte{[]byte("0"), []byte("1"), []byte("2")}

// records streams the records of one produce request to the encoder
// without a per-record allocation: one Record, its headers and its key
// and value readers are reused, since the encoder is done with a record
// before it reads the next. Each record carries its key and value as
// given (an empty value is sent empty, not null: a null value is a
// tombstone), the time the MQTT message was received, and the MQTT
// metadata as headers followed by the v5 user properties under their
// own names.
type records struct {
	batch   []sinks.Record
	idx     []int
	pos     int
	now     time.Time
	rec     kafkago.Record
	key     bytesReader
	value   bytesReader
	headers []kafkago.Header
	arena   []byte
}

func newRecords(batch []sinks.Record, idx []int) *records {
	return &records{batch: batch, idx: idx, now: time.Now(), headers: make([]kafkago.Header, 0, 8)}
}

// ReadRecord implements kafka-go's RecordReader.
func (rs *records) ReadRecord() (*kafkago.Record, error) {
	if rs.pos >= len(rs.idx) {
		return nil, io.EOF
	}
	r := &rs.batch[rs.idx[rs.pos]]
	rs.pos++
	rs.arena = rs.arena[:0]
	h := rs.headers[:0]
	h = append(h, kafkago.Header{Key: HeaderMQTTTopic, Value: rs.bytes(r.Source.Topic)})
	h = append(h, kafkago.Header{Key: HeaderClientID, Value: rs.bytes(r.Source.ClientID)})
	if r.Source.QoS < 3 {
		h = append(h, kafkago.Header{Key: HeaderQoS, Value: qosValues[r.Source.QoS]})
	} else {
		h = append(h, kafkago.Header{Key: HeaderQoS, Value: strconv.AppendUint(nil, uint64(r.Source.QoS), 10)})
	}
	if r.Source.ContentType != "" {
		h = append(h, kafkago.Header{Key: HeaderContentType, Value: rs.bytes(r.Source.ContentType)})
	}
	for _, p := range r.Source.UserProperties {
		h = append(h, kafkago.Header{Key: p.Name, Value: rs.bytes(p.Value)})
	}
	rs.headers = h
	rs.rec = kafkago.Record{Time: r.Source.ReceivedAt, Headers: h}
	if rs.rec.Time.IsZero() {
		rs.rec.Time = rs.now
	}
	if r.Key != nil {
		rs.key.Reset(r.Key)
		rs.rec.Key = &rs.key
	}
	rs.value.Reset(r.Value)
	rs.rec.Value = &rs.value
	return &rs.rec, nil
}

// bytes copies s into the arena. The arena may grow (and move) while a
// record's headers are built, so the slice returned is cut from a fresh
// allocation in that case rather than aliasing the old array.
func (rs *records) bytes(s string) []byte {
	if len(rs.arena)+len(s) > cap(rs.arena) {
		rs.arena = make([]byte, 0, max(2*cap(rs.arena), len(s), 512))
	}
	n := len(rs.arena)
	rs.arena = append(rs.arena, s...)
	return rs.arena[n:len(rs.arena):len(rs.arena)]
}

// bytesReader is a reusable kafka-go Bytes over a slice.
type bytesReader struct{ bytes.Reader }

// Close implements io.Closer; there is nothing to release.
func (*bytesReader) Close() error { return nil }

// recordError returns the broker's error for the j-th record of a
// produce request, or nil.
func recordError(res *kafkago.ProduceResponse, j int) error {
	if res == nil {
		return nil
	}
	return res.RecordErrors[j]
}

// permanentCodes are the broker errors retrying cannot fix: the record,
// its topic name or the sink's settings are wrong.
var permanentCodes = map[kafkago.Error]bool{
	kafkago.InvalidMessageSize:          true,
	kafkago.MessageSizeTooLarge:         true,
	kafkago.InvalidTopic:                true,
	kafkago.RecordListTooLarge:          true,
	kafkago.InvalidRequiredAcks:         true,
	kafkago.TopicAuthorizationFailed:    true,
	kafkago.InvalidTimestamp:            true,
	kafkago.UnsupportedForMessageFormat: true,
	kafkago.PolicyViolation:             true,
	kafkago.UnsupportedCompressionType:  true,
	kafkago.InvalidRecord:               true,
}

// staleCodes say the cached metadata is wrong (leaders moved, a topic
// appeared): the connections are reset so the next attempt refetches it.
var staleCodes = map[kafkago.Error]bool{
	kafkago.UnknownTopicOrPartition:     true,
	kafkago.LeaderNotAvailable:          true,
	kafkago.NotLeaderForPartition:       true,
	kafkago.BrokerNotAvailable:          true,
	kafkago.ReplicaNotAvailable:         true,
	kafkago.NetworkException:            true,
	kafkago.FencedLeaderEpoch:           true,
	kafkago.UnknownLeaderEpoch:          true,
	kafkago.KafkaStorageError:           true,
	kafkago.NotController:               true,
	kafkago.PreferredLeaderNotAvailable: true,
}

// Classify marks err permanent when it carries one of the broker errors
// retrying cannot fix (see permanentCodes); network errors, timeouts and
// every other broker error stay retryable.
func Classify(err error) error {
	var ke kafkago.Error
	if errors.As(err, &ke) && permanentCodes[ke] {
		return sinks.Permanent(err)
	}
	return err
}

// reset drops the transport's connection pools after an error that
// suggests stale metadata or a broken connection, so the next attempt
// dials afresh and refetches the metadata instead of waiting out its TTL.
func (s *Sink) reset(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	var ke kafkago.Error
	if errors.As(err, &ke) && !staleCodes[ke] {
		return
	}
	s.log.Debug("resetting kafka connections", "error", err)
	s.transport.CloseIdleConnections()
}
