package sinkconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sinks/republish"
	"github.com/sluicehq/sluice/sinks/webhook"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want []string // error prefixes, in order
	}{
		{name: "kafka", spec: Spec{Type: "kafka", Kafka: kafka.Config{Brokers: []string{"k:9092"}}}},
		{name: "webhook", spec: Spec{Type: "webhook", Webhook: webhook.Config{URL: "http://h/"}}},
		{name: "republish with defaults", spec: Spec{Type: "republish"}},
		{name: "no type", spec: Spec{}, want: []string{"type: is required"}},
		{name: "unknown type", spec: Spec{Type: "mongodb"}, want: []string{"type: unknown sink type"}},
		{name: "nested errors get the section path", spec: Spec{Type: "kafka"}, want: []string{"kafka.brokers: "}},
		{name: "another type's section", spec: Spec{Type: "republish", Webhook: webhook.Config{URL: "http://h/"}}, want: []string{"webhook: set, but"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.spec.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %v", errs, tt.want)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Fatalf("error %d = %q, want prefix %q", i, err, tt.want[i])
				}
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	errs := ValidateAll(map[string]Spec{
		"b-ok":     {Type: "republish"},
		"a":        {Type: "webhook"},
		"bad name": {Type: "republish"},
	})
	want := []string{"a.webhook.url: is required", "bad name: invalid sink name"}
	if len(errs) != len(want) {
		t.Fatalf("ValidateAll = %v", errs)
	}
	for i, err := range errs {
		if !strings.HasPrefix(err.Error(), want[i]) {
			t.Fatalf("error %d = %q, want prefix %q", i, err, want[i])
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(*broker.Message) error { return nil }

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		deps    Deps
		want    any
		wantErr bool
	}{
		{name: "kafka", spec: Spec{Type: "kafka", Kafka: kafka.Config{Brokers: []string{"k:9092"}}}, want: &kafka.Sink{}},
		{name: "webhook", spec: Spec{Type: "webhook", Webhook: webhook.Config{URL: "http://h/"}}, want: &webhook.Sink{}},
		{name: "republish", spec: Spec{Type: "republish"}, deps: Deps{Broker: nopPublisher{}}, want: &republish.Sink{}},
		{name: "republish without a broker", spec: Spec{Type: "republish"}, wantErr: true},
		{name: "invalid", spec: Spec{Type: "kafka"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New("x", tt.spec, tt.deps)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "sink x: ") {
					t.Fatalf("error %q does not name the sink", err)
				}
				return
			}
			defer s.Close()
			if got, want := typeName(s), typeName(tt.want); got != want {
				t.Fatalf("New built a %s, want %s", got, want)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *kafka.Sink:
		return "kafka"
	case *webhook.Sink:
		return "webhook"
	case *republish.Sink:
		return "republish"
	}
	return "?"
}

// pipeline stands in for the cmd section holding the sinks map, to check
// the shape decodes strictly with the project's config loader.
type pipeline struct {
	Sinks map[string]Spec `koanf:"sinks"`
}

func (p pipeline) Validate() []error {
	var errs []error
	for _, err := range ValidateAll(p.Sinks) {
		errs = append(errs, errors.New("sinks."+err.Error()))
	}
	return errs
}

func TestLoadYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // config errors, in order
	}{
		{name: "valid", yaml: `
pipeline:
  sinks:
    events:
      type: kafka
      kafka:
        brokers: ["kafka-1:9092"]
        topic: mqtt-events
        sasl: {mechanism: scram-sha-512, username: sluice, password: "${SLUICE_TEST_UNSET_KAFKA_PASSWORD}"}
    alerts:
      type: webhook
      webhook:
        url: https://hooks.example.com/in/{topic}
        headers: {Authorization: "Bearer ${SLUICE_TEST_UNSET_TOKEN}"}
    rooms:
      type: republish
`},
		{name: "unknown key", yaml: `
pipeline:
  sinks:
    events:
      type: kafka
      kafka:
        bokers: ["kafka-1:9092"]
`, want: []string{"pipeline.sinks.events.kafka.bokers: unknown key (test.yaml:7)"}},
		{name: "invalid values", yaml: `
pipeline:
  sinks:
    events:
      type: kafka
      kafka:
        brokers: ["kafka-1:9092"]
        compression: brotli
      webhook:
        url: http://h/
`, want: []string{
			"pipeline.sinks.events.kafka.compression: must be none, gzip, snappy, lz4 or zstd, not \"brotli\" (test.yaml:8)",
			"pipeline.sinks.events.webhook: set, but the sink's type is \"kafka\" (test.yaml:9)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pipeline
			err := config.Load([]config.Section{{Name: "pipeline", Value: &p}}, config.Sources{FileName: "test.yaml", File: []byte(tt.yaml)})
			var errs config.Errors
			if err != nil && !errors.As(err, &errs) {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("Load errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err != nil {
				return
			}
			for name, spec := range p.Sinks {
				s, err := New(name, spec, Deps{Broker: nopPublisher{}})
				if name == "events" || name == "alerts" {
					// Secrets name unset variables: New reports it.
					if err == nil || !strings.Contains(err.Error(), "is not set") {
						t.Fatalf("New(%s) = %v, want an unset-variable error", name, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("New(%s) = %v", name, err)
				}
				s.Close()
			}
		})
	}
}
