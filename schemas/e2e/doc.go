// Package e2e tests payload decoding, validation and encoding through the
// real sluice binary, driven by real MQTT clients: a JSON Schema violation
// dead-lettered and visible through `sluice dlq list` and the admin API;
// a Protobuf payload decoded and routed by a rule reading one of its
// fields to a webhook; Sparkplug B births, aliased data and a rebirth
// request received by a subscribed MQTT client; and a rule's output
// encoded as Protobuf into Kafka (kfake) and decoded by a consumer.
//
// The package holds tests only; `go test -short` skips them.
package e2e
