package clickhouse

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/sinks"
)

// sourceKind says where a column's value comes from.
type sourceKind uint8

const (
	srcField sourceKind = iota // a field of the record's JSON object
	srcSkip                    // "-": not written, ClickHouse fills it
	srcTopic                   // the MQTT topic
	srcClientID
	srcUsername
	srcReceivedAt
	srcRule
	srcKey
	srcValue // the record's value, raw
	srcQoS
	srcRetain
	srcContentType
	srcRecordTopic // the topic the rule rendered
)

// metaSources are the record properties a column can be mapped to.
var metaSources = map[string]sourceKind{
	"$topic":        srcTopic,
	"$client_id":    srcClientID,
	"$username":     srcUsername,
	"$received_at":  srcReceivedAt,
	"$rule":         srcRule,
	"$key":          srcKey,
	"$value":        srcValue,
	"$qos":          srcQoS,
	"$retain":       srcRetain,
	"$content_type": srcContentType,
	"$record_topic": srcRecordTopic,
}

// source is a parsed column mapping.
type source struct {
	kind sourceKind
	path []string // srcField: object keys from the top
	text string   // as configured, for messages
}

// parseSource parses a `columns:` value.
func parseSource(s string) (source, error) {
	switch {
	case s == "-":
		return source{kind: srcSkip, text: s}, nil
	case strings.HasPrefix(s, "$"):
		k, ok := metaSources[s]
		if !ok {
			return source{}, fmt.Errorf("unknown record property %q (want one of $topic, $client_id, $username, $received_at, $rule, $key, $value, $qos, $retain, $content_type, $record_topic)", s)
		}
		return source{kind: k, text: s}, nil
	case s == "":
		return source{}, fmt.Errorf("empty mapping (want a JSON field, a $property or -)")
	}
	path := strings.Split(s, ".")
	for _, p := range path {
		if p == "" {
			return source{}, fmt.Errorf("invalid field path %q (empty part)", s)
		}
	}
	return source{kind: srcField, path: path, text: s}, nil
}

// meta returns the record property a source names, as a value.
func (s *source) meta(r *sinks.Record, v *value) {
	switch s.kind {
	case srcTopic:
		v.setString(r.Source.Topic)
	case srcClientID:
		v.setString(r.Source.ClientID)
	case srcUsername:
		v.setString(r.Source.Username)
	case srcRule:
		v.setString(r.Rule)
	case srcContentType:
		v.setString(r.Source.ContentType)
	case srcRecordTopic:
		v.setString(r.Topic)
	case srcKey:
		*v = value{kind: valString, b: r.Key, stable: true}
	case srcValue:
		*v = value{kind: valString, b: r.Value, stable: true}
	case srcReceivedAt:
		*v = value{kind: valTime, t: r.Source.ReceivedAt}
	case srcQoS:
		*v = value{kind: valInt, n: int64(r.Source.QoS)}
	case srcRetain:
		*v = value{kind: valBool, n: boolInt(r.Source.Retain)}
	}
}

// metaKind is the value kind a property source produces, to check at
// Connect whether the column can hold it.
func (s *source) metaKind() valKind {
	switch s.kind {
	case srcReceivedAt:
		return valTime
	case srcQoS:
		return valInt
	case srcRetain:
		return valBool
	}
	return valString
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
