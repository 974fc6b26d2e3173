package sim

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Payload formats accepted by Config.Format.
const (
	// FormatJSON gives each machine its own connection and JSON topics
	// under plant/{site}/line/{n}/machine/{m}.
	FormatJSON = "json"
	// FormatSparkplugB makes each line a Sparkplug B edge node of group
	// {site} and its machines devices.
	FormatSparkplugB = "sparkplugb"
)

// Config is what one simulator run needs. DefaultConfig fills every field.
type Config struct {
	// Addr is the broker's host:port. Default 127.0.0.1:1883.
	Addr string
	// Site is the {site} topic level. Default "plant1".
	Site string
	// Lines is the number of production lines. Default 2.
	Lines int
	// Machines is the number of machines per line. Default 5.
	Machines int
	// Interval is each machine's telemetry period. Default 1s.
	Interval time.Duration
	// DriftTau is the time constant of the temperature's approach to its
	// set-point: after DriftTau it has covered 63% of the gap. Default 30s.
	DriftTau time.Duration
	// FaultRate is the chance per second that a running machine faults.
	// Default 0.005 (about one fault per machine every 3 minutes).
	FaultRate float64
	// FaultDuration is the mean time a fault lasts (uniform between half
	// and one and a half of it). Default 15s.
	FaultDuration time.Duration
	// ReconnectRate is the chance per second that a machine drops its TCP
	// connection without DISCONNECT and reconnects with its persistent
	// session. Default 0.001 (about one drop per machine every 17 min).
	ReconnectRate float64
	// Seed makes every machine's samples reproducible. Default 1.
	Seed uint64
	// ConnectTimeout bounds the first connect of each machine. Default 5s.
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for a PUBACK. Default 5s.
	PublishTimeout time.Duration
	// Username and Password authenticate every machine when Username is
	// set. Default none.
	Username, Password string
	// Format is json or sparkplugb. Default json.
	Format string
	// ReplyTopic is where a machine answers a JSON command: a template
	// with {prefix} (the machine's topic prefix), {client_id} and {id}
	// (the command's "id"). A command without an id is answered on
	// {prefix}/cmd/reply whatever the template. Sluice's command service
	// matches 3.1.1 replies by a topic holding the id, e.g.
	// "devices/{client_id}/replies/{id}" for its default reply_topic.
	// Default "{prefix}/cmd/reply".
	ReplyTopic string
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Addr:           "127.0.0.1:1883",
		Site:           "plant1",
		Lines:          2,
		Machines:       5,
		Interval:       time.Second,
		DriftTau:       30 * time.Second,
		FaultRate:      0.005,
		FaultDuration:  15 * time.Second,
		ReconnectRate:  0.001,
		Seed:           1,
		ConnectTimeout: 5 * time.Second,
		PublishTimeout: 5 * time.Second,
		Format:         FormatJSON,
		ReplyTopic:     "{prefix}/cmd/reply",
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if c.Site == "" || !topicLevelOK(c.Site) {
		errs = append(errs, fmt.Errorf("site: %q is not a single topic level", c.Site))
	}
	if c.Lines < 1 || c.Lines > 1000 {
		errs = append(errs, fmt.Errorf("lines: %d not in 1..1000", c.Lines))
	}
	if c.Machines < 1 || c.Machines > 1000 {
		errs = append(errs, fmt.Errorf("machines: %d not in 1..1000", c.Machines))
	}
	if c.Interval < time.Millisecond {
		errs = append(errs, fmt.Errorf("interval: %v is below 1ms", c.Interval))
	}
	if c.DriftTau <= 0 {
		errs = append(errs, fmt.Errorf("drift: %v must be positive", c.DriftTau))
	}
	if c.FaultRate < 0 || c.ReconnectRate < 0 {
		errs = append(errs, errors.New("fault and reconnect rates must not be negative"))
	}
	if c.FaultDuration <= 0 {
		errs = append(errs, fmt.Errorf("fault-duration: %v must be positive", c.FaultDuration))
	}
	if c.Format != FormatJSON && c.Format != FormatSparkplugB {
		errs = append(errs, fmt.Errorf("format: %q not supported (want json or sparkplugb)", c.Format))
	}
	if r := replyTopic(c.ReplyTopic, "p/l", "c", "i"); c.ReplyTopic == "" || strings.ContainsAny(r, "+#{}") || strings.Contains(r, "//") {
		errs = append(errs, fmt.Errorf("reply-topic: %q is not a topic template ({prefix}, {client_id}, {id}; no wildcards)", c.ReplyTopic))
	}
	if c.ConnectTimeout <= 0 || c.PublishTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	return errors.Join(errs...)
}

// topicLevelOK reports whether s can be one level of a topic name.
func topicLevelOK(s string) bool {
	for _, r := range s {
		switch r {
		case '/', '+', '#', 0:
			return false
		}
	}
	return true
}

// addrFromURL turns tcp://host:port or mqtt://host:port into host:port.
func addrFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing url: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
	default:
		return "", fmt.Errorf("url scheme %q not supported (want tcp:// or mqtt://)", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", fmt.Errorf("url %q has no host", raw)
	}
	if port == "" {
		port = "1883"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("url port %q: %w", port, err)
	}
	return net.JoinHostPort(host, port), nil
}

// replyTopic renders a ReplyTopic template; with {id} and no id it is
// prefix/cmd/reply.
func replyTopic(tmpl, prefix, clientID, id string) string {
	if id == "" && strings.Contains(tmpl, "{id}") {
		return prefix + "/cmd/reply"
	}
	return strings.NewReplacer("{prefix}", prefix, "{client_id}", clientID, "{id}", id).Replace(tmpl)
}

// machinePrefix is the topic prefix of machine m on line n (both from 1).
func machinePrefix(site string, line, machine int) string {
	return fmt.Sprintf("plant/%s/line/%d/machine/%d", site, line, machine)
}
