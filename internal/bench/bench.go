// Package bench implements `sluice bench`, an MQTT load generator that can
// be pointed at any broker. It runs publishers, subscribers or idle
// connections over a minimal MQTT client built on the repository's own
// codec (broker/packet) so that the generator costs as little CPU as
// possible on a machine it shares with the broker under test.
//
// Publishers embed a 20-byte header in every payload (run id, publisher
// index, sequence number, send time), which lets subscribers compute
// end-to-end latency and count loss and duplicates exactly.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// Modes of `sluice bench`.
const (
	modePub    = "pub"
	modeSub    = "sub"
	modeConn   = "conn"
	modeFanin  = "fanin"
	modeFanout = "fanout"
)

// config is one bench run's settings, filled from flags.
type config struct {
	mode        string
	addr        string // host:port
	brokerURL   string // for display
	username    string
	password    string
	version     byte
	clients     int // pub, sub, conn
	pubs, subs  int // fanin, fanout
	rate        float64
	size        int
	qos         byte
	inflight    int
	duration    time.Duration
	topic       string // publish topic template (%i = client index)
	filter      string // subscription filter template (%i = client index)
	connRate    float64
	keepAlive   time.Duration
	connTimeout time.Duration
	coalesce    time.Duration
	drain       time.Duration
	prefix      string
	pid         int
	quiet       bool
	json        bool
}

const usageText = `Usage: sluice bench <mode> [flags]

Modes:
  pub     publishers only (-clients N), reports sent and acknowledged messages
  sub     subscribers only (-clients N), reports received messages and latency
  conn    opens -clients connections, holds them idle for -duration
  fanin   -pubs publishers and -subs subscribers in one process (default 50 -> 1),
          reports end-to-end latency, loss and duplicates
  fanout  same as fanin with defaults 1 publisher -> 100 subscribers

Run 'sluice bench <mode> -h' for the flags.
`

// Main runs `sluice bench` with args (the words after "bench") and returns
// the process exit code: 0 when the run completed (its summary may still
// report errors or loss), 1 when it could not run (no connection could be
// made), 2 for usage errors.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cfg, err := parseFlags(args[0], args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := newRunner(cfg, stderr, progressEnabled(cfg, stderr))
	sum, err := r.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "sluice bench: %v\n", err)
		return 1
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "sluice bench: writing summary: %v\n", err)
			return 1
		}
		return 0
	}
	sum.writeText(stdout)
	return 0
}

// parseFlags builds a config for mode from its flags.
func parseFlags(mode string, args []string, stderr io.Writer) (*config, error) {
	switch mode {
	case modePub, modeSub, modeConn, modeFanin, modeFanout:
	default:
		return nil, fmt.Errorf("unknown mode %q (want pub, sub, conn, fanin or fanout)", mode)
	}
	cfg := &config{mode: mode}
	fs := flag.NewFlagSet("sluice bench "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)

	var host, rawURL string
	var port, version, qos int
	fs.StringVar(&rawURL, "url", "", "broker URL mqtt://[user:pass@]host:port (overrides -host/-port)")
	fs.StringVar(&host, "host", "127.0.0.1", "broker host")
	fs.IntVar(&port, "port", 1883, "broker port")
	fs.StringVar(&cfg.username, "username", "", "username sent in CONNECT")
	fs.StringVar(&cfg.password, "password", "", "password sent in CONNECT")
	fs.IntVar(&version, "v", 3, "MQTT protocol version: 3 (3.1.1, also accepts 4) or 5")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to publish (or hold connections in conn mode)")
	fs.Float64Var(&cfg.connRate, "connrate", 0, "connections opened per second (0 = as fast as possible, 64 handshakes at a time)")
	fs.DurationVar(&cfg.keepAlive, "keepalive", 60*time.Second, "MQTT keep alive; pings are sent at half of it")
	fs.DurationVar(&cfg.connTimeout, "connect-timeout", 10*time.Second, "timeout for the TCP and MQTT handshakes")
	fs.DurationVar(&cfg.coalesce, "coalesce", time.Millisecond, "on a busy connection, wait this long before a read so it finds a batch (0 = off)")
	fs.StringVar(&cfg.prefix, "prefix", "sluice-bench", "client ID prefix")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no live progress line")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as one JSON object")

	if mode == modeConn {
		fs.IntVar(&cfg.clients, "clients", 1000, "number of connections")
		fs.IntVar(&cfg.pid, "pid", 0, "PID of a local broker: sample its VmRSS before connecting and at the end of the hold")
	} else {
		fs.IntVar(&qos, "qos", 0, "QoS of publishes and subscriptions: 0, 1 or 2")
		fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "after publishing, how long to wait at most for acks and deliveries")
	}
	defTopic, defFilter := "bench/%i", "bench/#"
	switch mode {
	case modePub:
		fs.IntVar(&cfg.clients, "clients", 10, "number of publishers")
	case modeSub:
		fs.IntVar(&cfg.clients, "clients", 10, "number of subscribers")
	case modeFanin:
		fs.IntVar(&cfg.pubs, "pubs", 50, "number of publishers")
		fs.IntVar(&cfg.subs, "subs", 1, "number of subscribers")
	case modeFanout:
		fs.IntVar(&cfg.pubs, "pubs", 1, "number of publishers")
		fs.IntVar(&cfg.subs, "subs", 100, "number of subscribers")
	}
	switch mode {
	case modePub, modeFanin, modeFanout:
		fs.Float64Var(&cfg.rate, "rate", 0, "messages per second per publisher (0 = as fast as possible)")
		fs.IntVar(&cfg.size, "size", 256, "payload size in bytes (latency and loss need at least 24)")
		fs.IntVar(&cfg.inflight, "inflight", 64, "QoS 1/2 window per publisher (capped by the broker's receive maximum)")
		fs.StringVar(&cfg.topic, "topic", defTopic, "publish topic; %i is replaced by the publisher index")
	}
	switch mode {
	case modeSub:
		fs.StringVar(&cfg.filter, "topic", defFilter, "subscription filter; %i is replaced by the subscriber index")
	case modeFanin, modeFanout:
		fs.StringVar(&cfg.filter, "filter", defFilter, "subscription filter (must match every publish topic); %i = subscriber index")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var problems []string
	cfg.addr = net.JoinHostPort(host, strconv.Itoa(port))
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("-url: %v", err))
		case u.Scheme != "mqtt" && u.Scheme != "tcp":
			problems = append(problems, fmt.Sprintf("-url: scheme %q not supported (want mqtt or tcp)", u.Scheme))
		default:
			p := u.Port()
			if p == "" {
				p = "1883"
			}
			cfg.addr = net.JoinHostPort(u.Hostname(), p)
			if u.User != nil {
				cfg.username = u.User.Username()
				cfg.password, _ = u.User.Password()
			}
		}
	}
	cfg.brokerURL = "mqtt://" + cfg.addr
	switch version {
	case 3, 4:
		cfg.version = packet.Version311
	case 5:
		cfg.version = packet.Version5
	default:
		problems = append(problems, fmt.Sprintf("-v: %d is not 3 (3.1.1) or 5", version))
	}
	if qos < 0 || qos > 2 {
		problems = append(problems, fmt.Sprintf("-qos: %d is not 0, 1 or 2", qos))
	}
	cfg.qos = byte(qos)
	if cfg.clients < 0 || cfg.pubs < 0 || cfg.subs < 0 {
		problems = append(problems, "client counts must not be negative")
	}
	if (mode == modeFanin || mode == modeFanout) && (cfg.pubs == 0 || cfg.subs == 0) {
		problems = append(problems, "-pubs and -subs must be at least 1")
	}
	if cfg.pubs+cfg.subs+cfg.clients > 1<<20 {
		problems = append(problems, "more than 1048576 clients")
	}
	if cfg.rate < 0 || cfg.connRate < 0 {
		problems = append(problems, "rates must not be negative")
	}
	if cfg.size < 0 || cfg.size > 256<<20 {
		problems = append(problems, fmt.Sprintf("-size: %d out of range", cfg.size))
	}
	if (mode == modeFanin || mode == modeFanout) && cfg.size < headerSize {
		problems = append(problems, fmt.Sprintf("-size: %d is below %d, the header that carries sequence numbers and send times", cfg.size, headerSize))
	}
	if cfg.inflight < 1 || cfg.inflight > 65535 {
		if mode != modeSub && mode != modeConn {
			problems = append(problems, fmt.Sprintf("-inflight: %d not in 1..65535", cfg.inflight))
		}
	}
	if cfg.duration <= 0 {
		problems = append(problems, "-duration must be positive")
	}
	if cfg.keepAlive < 0 || cfg.keepAlive > 65535*time.Second {
		problems = append(problems, "-keepalive out of range")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return cfg, nil
}

// expand replaces %i in a topic template with the client index.
func expand(template string, i int) string {
	return strings.ReplaceAll(template, "%i", strconv.Itoa(i))
}

// progressEnabled reports whether the live progress line should be drawn:
// only when stderr is a terminal and -quiet was not given.
func progressEnabled(cfg *config, stderr io.Writer) bool {
	if cfg.quiet {
		return false
	}
	f, ok := stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
