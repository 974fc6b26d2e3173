package kafka

import (
	"context"
	"errors"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

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

// record converts r: key and value as given (an empty value is sent as
// an empty, not a null, value: a null would be a tombstone), the time the
// MQTT message was received, and the MQTT metadata as headers followed by
// the v5 user properties under their own names.
func record(r *sinks.Record) kafkago.Record {
	h := make([]kafkago.Header, 0, 4+len(r.Source.UserProperties))
	h = append(h,
		kafkago.Header{Key: HeaderMQTTTopic, Value: []byte(r.Source.Topic)},
		kafkago.Header{Key: HeaderClientID, Value: []byte(r.Source.ClientID)},
	)
	if r.Source.QoS < 3 {
		h = append(h, kafkago.Header{Key: HeaderQoS, Value: qosValues[r.Source.QoS]})
	} else {
		h = append(h, kafkago.Header{Key: HeaderQoS, Value: strconv.AppendUint(nil, uint64(r.Source.QoS), 10)})
	}
	if r.Source.ContentType != "" {
		h = append(h, kafkago.Header{Key: HeaderContentType, Value: []byte(r.Source.ContentType)})
	}
	for _, p := range r.Source.UserProperties {
		h = append(h, kafkago.Header{Key: p.Name, Value: []byte(p.Value)})
	}
	v := r.Value
	if v == nil {
		v = []byte{}
	}
	t := r.Source.ReceivedAt
	if t.IsZero() {
		t = time.Now()
	}
	return kafkago.Record{Time: t, Key: protocol.NewBytes(r.Key), Value: protocol.NewBytes(v), Headers: h}
}

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

// result turns the per-record outcomes into Write's error: nil, the one
// error every record shares, or a *sinks.BatchError.
func result(errs []error) error {
	var be sinks.BatchError
	for i, err := range errs {
		if err != nil {
			be.Failed = append(be.Failed, sinks.ItemError{Index: i, Err: err})
		}
	}
	if len(be.Failed) == 0 {
		return nil
	}
	if len(be.Failed) == len(errs) {
		first := be.Failed[0].Err
		same := true
		for _, f := range be.Failed[1:] {
			if f.Err != first {
				same = false
				break
			}
		}
		if same {
			return first
		}
	}
	return &be
}
