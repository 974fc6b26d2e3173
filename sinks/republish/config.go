package republish

import (
	"fmt"

	"github.com/sluicehq/sluice/broker/topic"
)

// Config configures a republish sink. A zero field means its default, so
// a Config decoded over a zero value (as a map entry is) is complete.
type Config struct {
	// Topic is the MQTT topic of records whose rule renders none.
	// Default: "" (such records are dead-lettered).
	Topic string `koanf:"topic"`
	// MaxHops is how many times a message may be republished: a record
	// whose source message carries a sluice-hop user property of max_hops
	// or more is dead-lettered instead, which breaks rule loops.
	// Default: 8.
	MaxHops int `koanf:"max_hops"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{MaxHops: 8} }

func (c Config) withDefaults() Config {
	if c.MaxHops == 0 {
		c.MaxHops = DefaultConfig().MaxHops
	}
	return c
}

// Validate reports every problem in c, each with its key path relative
// to the sink's section.
func (c Config) Validate() []error {
	c = c.withDefaults()
	var errs []error
	if c.Topic != "" && !topic.ValidName([]byte(c.Topic)) {
		errs = append(errs, fmt.Errorf("topic: %q is not a valid MQTT topic name (no wildcards, not empty)", c.Topic))
	}
	if c.MaxHops < 1 || c.MaxHops > 1000 {
		errs = append(errs, fmt.Errorf("max_hops: must be between 1 and 1000, not %d", c.MaxHops))
	}
	return errs
}
