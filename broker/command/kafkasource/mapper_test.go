package kafkasource

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/command"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Enabled, c.Brokers, c.Topics = true, []string{"127.0.0.1:9092"}, []string{"commands"}
		return c
	}
	q := func(n int) *int { return &n }
	tests := []struct {
		name string
		mod  func(c *Config)
		want []string // substrings, one per expected error
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "disabled is not checked", mod: func(c *Config) { *c = Config{} }},
		{name: "zero values mean defaults", mod: func(c *Config) {
			*c = Config{Enabled: true, Brokers: []string{"k:9092"}, Topics: []string{"t"}}
		}},
		{name: "everything wrong", mod: func(c *Config) {
			c.Brokers = []string{"nohost"}
			c.Topics = []string{"ok", "bad topic", "ok"}
			c.StartOffset = "middle"
			c.Device = "{{ nope }}"
			c.Topic = "a/{{ key"
			c.PayloadField = "a..b"
			c.QoS = q(3)
			c.TTL = -time.Second
			c.Concurrency = 2000
			c.RetryInitial, c.RetryMax = time.Minute, time.Second
			c.TLS.CAFile = "ca.pem"
		}, want: []string{
			"brokers[0]: want host:port", "topics[1]: topic name", `topics[2]: topic "ok" is listed twice`,
			"start_offset: must be first or last", "device: unknown placeholder {{nope}}",
			"topic: unclosed {{ at column 3", "payload_field: empty segment", "qos: must be 0, 1 or 2",
			"ttl: must not be negative", "concurrency: must be between", "retry_max: must not be below",
			"tls.enabled: must be true",
		}},
		{name: "sasl", mod: func(c *Config) { c.SASL.Mechanism = "gssapi" }, want: []string{
			"sasl.mechanism: must be plain, scram-sha-256 or scram-sha-512", "sasl.username: is required",
		}},
		{name: "sasl user without mechanism", mod: func(c *Config) { c.SASL.Username = "u" }, want: []string{
			"sasl.mechanism: is required",
		}},
		{name: "nothing to read", mod: func(c *Config) { c.Brokers, c.Topics = nil, nil }, want: []string{
			"brokers: at least one", "topics: at least one",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			errs := c.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d errors", errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestMapperCommand(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	value := []byte(`{"machine":"m-9","cmd":{"sp":21.5},"text":"stop"}`)
	tests := []struct {
		name    string
		cfg     func(c *Config)
		headers []header
		key     string
		ts      time.Time
		want    command.Command
		wantErr string
	}{
		{
			name: "defaults: device from key, id from position",
			key:  "press-7",
			want: command.Command{ID: "commands-1-42", Device: "press-7", Payload: value, QoS: 1, Source: "kafka", Principal: "kafka:commands"},
		},
		{
			name: "headers", key: "press-7", ts: now.Add(-10 * time.Second),
			headers: []header{{"command-id", []byte("c-1")}, {"qos", []byte("2")}, {"ttl", []byte("1m")},
				{"correlation-id", []byte("corr")}, {"content-type", []byte("application/json")}},
			want: command.Command{ID: "c-1", Device: "press-7", Payload: value, QoS: 2, TTL: time.Minute, Deadline: now.Add(50 * time.Second),
				CorrelationID: "corr", ContentType: "application/json", Source: "kafka", Principal: "kafka:commands"},
		},
		{
			name: "ttl in seconds, config defaults", key: "d",
			cfg:     func(c *Config) { c.QoS = new(int); c.TTL = time.Hour },
			headers: []header{{"ttl", []byte("90")}},
			want:    command.Command{ID: "commands-1-42", Device: "d", Payload: value, QoS: 0, TTL: 90 * time.Second, Source: "kafka", Principal: "kafka:commands"},
		},
		{
			name: "topic and payload from JSON",
			cfg: func(c *Config) {
				c.Device, c.Topic, c.PayloadField = "{{ json.machine }}", "plant/{{ json.machine }}/cmd", "cmd"
			},
			want: command.Command{ID: "commands-1-42", Device: "m-9", Topic: "plant/m-9/cmd", Payload: []byte(`{"sp":21.5}`), QoS: 1, Source: "kafka", Principal: "kafka:commands"},
		},
		{
			name: "string payload field is its text",
			cfg:  func(c *Config) { c.PayloadField = "text" }, key: "d",
			want: command.Command{ID: "commands-1-42", Device: "d", Payload: []byte("stop"), QoS: 1, Source: "kafka", Principal: "kafka:commands"},
		},
		{name: "no key", wantErr: "device: {{key}} is empty"},
		{name: "device with a slash", key: "a/b", wantErr: "is not a client id"},
		{name: "wildcard topic", key: "+", cfg: func(c *Config) { c.Device, c.Topic = "", "cmd/{{ key }}" }, wantErr: "not a valid MQTT topic name"},
		{name: "bad qos header", key: "d", headers: []header{{"qos", []byte("3")}}, wantErr: "header qos"},
		{name: "bad ttl header", key: "d", headers: []header{{"ttl", []byte("soon")}}, wantErr: "header ttl"},
		{name: "missing payload field", key: "d", cfg: func(c *Config) { c.PayloadField = "data" }, wantErr: `payload_field data: no field "data"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			m, err := newMapper(cfg.withDefaults())
			if err != nil {
				t.Fatal(err)
			}
			rv := &recordView{topic: "commands", partition: 1, key: []byte(tt.key), headers: tt.headers, value: value}
			got, err := m.command(rv, 42, tt.ts, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("command() error = %v, want one containing %q", err, tt.wantErr)
				}
				if got.ID == "" || got.Principal != "kafka:commands" {
					t.Fatalf("a failed mapping keeps id and principal, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.ID || got.Device != tt.want.Device || got.Topic != tt.want.Topic ||
				string(got.Payload) != string(tt.want.Payload) || got.QoS != tt.want.QoS || got.TTL != tt.want.TTL || !got.Deadline.Equal(tt.want.Deadline) ||
				got.CorrelationID != tt.want.CorrelationID || got.ContentType != tt.want.ContentType ||
				got.Source != tt.want.Source || got.Principal != tt.want.Principal {
				t.Fatalf("command() = %+v\nwant        %+v", got, tt.want)
			}
		})
	}
}
