// Package sinkconfig is the `sinks:` section of the Sluice config file: a
// map from sink name (what rules name as their output) to a Spec, and the
// constructor cmd calls for each entry. It is the explicit registry of
// sink types; there is no init-time registration.
//
//	sinks:
//	  events:
//	    type: kafka
//	    kafka:
//	      brokers: ["kafka-1:9092"]
//	      topic: mqtt-events
//	  alerts:
//	    type: webhook
//	    webhook:
//	      url: https://hooks.example.com/sluice/{topic}
//	      secret: ${WEBHOOK_SECRET}
//	  rooms:
//	    type: republish
//	    republish:
//	      max_hops: 4
package sinkconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/clickhouse"
	"github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sinks/republish"
	"github.com/sluicehq/sluice/sinks/webhook"
)

// Sink types.
const (
	TypeKafka      = "kafka"
	TypeWebhook    = "webhook"
	TypeRepublish  = "republish"
	TypeClickHouse = "clickhouse"
)

// Spec configures one sink. Only the section named by Type may be set;
// its zero fields take their defaults.
type Spec struct {
	// Type is kafka, webhook, republish or clickhouse. Required.
	Type string `koanf:"type"`
	// Kafka configures a sink of type kafka.
	Kafka kafka.Config `koanf:"kafka"`
	// Webhook configures a sink of type webhook.
	Webhook webhook.Config `koanf:"webhook"`
	// Republish configures a sink of type republish.
	Republish republish.Config `koanf:"republish"`
	// ClickHouse configures a sink of type clickhouse.
	ClickHouse clickhouse.Config `koanf:"clickhouse"`
}

// Validate reports every problem in s, with key paths relative to the
// sink's entry ("kafka.brokers: ...").
func (s Spec) Validate() []error {
	var errs []error
	sections := map[string]bool{
		TypeKafka:      !reflect.ValueOf(s.Kafka).IsZero(),
		TypeWebhook:    !reflect.ValueOf(s.Webhook).IsZero(),
		TypeRepublish:  !reflect.ValueOf(s.Republish).IsZero(),
		TypeClickHouse: !reflect.ValueOf(s.ClickHouse).IsZero(),
	}
	var sub []error
	switch s.Type {
	case TypeKafka:
		sub = s.Kafka.Validate()
	case TypeWebhook:
		sub = s.Webhook.Validate()
	case TypeRepublish:
		sub = s.Republish.Validate()
	case TypeClickHouse:
		sub = s.ClickHouse.Validate()
	case "":
		errs = append(errs, errors.New("type: is required (kafka, webhook, republish or clickhouse)"))
	default:
		errs = append(errs, fmt.Errorf("type: unknown sink type %q (want kafka, webhook, republish or clickhouse)", s.Type))
	}
	for _, err := range sub {
		errs = append(errs, fmt.Errorf("%s.%w", s.Type, err))
	}
	for _, name := range slices.Sorted(maps.Keys(sections)) {
		if sections[name] && name != s.Type {
			errs = append(errs, fmt.Errorf("%s: set, but the sink's type is %q", name, s.Type))
		}
	}
	return errs
}

// ValidateAll validates every entry of the section, with key paths
// relative to it ("events.kafka.brokers: ..."), in name order.
func ValidateAll(specs map[string]Spec) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		if !validName(name) {
			errs = append(errs, fmt.Errorf("%s: invalid sink name (want letters, digits, '_' and '-')", name))
		}
		for _, err := range specs[name].Validate() {
			errs = append(errs, fmt.Errorf("%s.%w", name, err))
		}
	}
	return errs
}

// Deps are what building a sink may need besides its config.
type Deps struct {
	// Logger is scoped by New with the sink's name. Default: discard.
	Logger *slog.Logger
	// Broker receives republished messages (a *broker.Server). Required
	// only by republish sinks.
	Broker republish.Publisher
}

// New builds the sink name described by s. It does no network I/O.
func New(name string, s Spec, deps Deps) (sinks.Sink, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sink", name, "type", s.Type)
	if errs := s.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("sink %s: %w", name, errors.Join(errs...))
	}
	var (
		sk  sinks.Sink
		err error
	)
	switch s.Type {
	case TypeKafka:
		sk, err = kafka.New(s.Kafka, log)
	case TypeWebhook:
		sk, err = webhook.New(s.Webhook, log)
	case TypeRepublish:
		sk, err = republish.New(s.Republish, deps.Broker, log)
	case TypeClickHouse:
		sk, err = clickhouse.New(s.ClickHouse, log)
	}
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	return sk, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
