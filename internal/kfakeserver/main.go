// Command kfakeserver runs franz-go's kfake, an in-memory Kafka
// implementation, as a standalone server process, so end-to-end tests can
// point the real sluice binary at a Kafka cluster they can kill and start
// again on the same port. With -data-dir the cluster persists its topics,
// records and offsets and reloads them on start; a record is written to
// its segment file before the produce request is answered, so it
// survives the process being killed (and, with -sync, a machine crash).
//
//	go run ./internal/kfakeserver -port 19092 -data-dir /tmp/kfake -topics events
//
// Once the listeners are up it prints one line per broker to stdout,
// "listening 127.0.0.1:PORT". SIGINT or SIGTERM closes the cluster
// (flushing its state to the data dir) and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakeserver: %v\n", err)
		os.Exit(2)
	}
}

// options are the command-line flags.
type options struct {
	port       int
	brokers    int
	dataDir    string
	sync       bool
	topics     string
	partitions int
	autoCreate bool
	logLevel   string
}

// parseFlags reads args into options and checks them.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("kfakeserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.port, "port", 0, "port of the first broker on 127.0.0.1 (further brokers take the next ports); 0 picks free ports")
	fs.IntVar(&o.brokers, "brokers", 1, "number of brokers")
	fs.StringVar(&o.dataDir, "data-dir", "", "persist the cluster in this directory and reload it on start (empty: in memory only)")
	fs.BoolVar(&o.sync, "sync", false, "fsync every produced batch before answering (with -data-dir)")
	fs.StringVar(&o.topics, "topics", "", "comma-separated topics to create on first start")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of -topics and of auto-created topics")
	fs.BoolVar(&o.autoCreate, "auto-create", false, "create unknown topics on metadata requests")
	fs.StringVar(&o.logLevel, "log-level", "none", "kfake log level on stderr: none, error, warn, info or debug")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.port < 0 || o.port > 65535 {
		errs = append(errs, fmt.Errorf("-port: %d is not a port", o.port))
	}
	if o.brokers < 1 || (o.port != 0 && o.port+o.brokers-1 > 65535) {
		errs = append(errs, fmt.Errorf("-brokers: %d brokers do not fit from port %d", o.brokers, o.port))
	}
	if o.partitions < 1 {
		errs = append(errs, fmt.Errorf("-partitions: %d, want at least 1", o.partitions))
	}
	if o.sync && o.dataDir == "" {
		errs = append(errs, errors.New("-sync: needs -data-dir"))
	}
	if _, ok := logLevels[o.logLevel]; !ok {
		errs = append(errs, fmt.Errorf("-log-level: unknown level %q (want none, error, warn, info or debug)", o.logLevel))
	}
	return o, errors.Join(errs...)
}

var logLevels = map[string]kfake.LogLevel{
	"none":  kfake.LogLevelNone,
	"error": kfake.LogLevelError,
	"warn":  kfake.LogLevelWarn,
	"info":  kfake.LogLevelInfo,
	"debug": kfake.LogLevelDebug,
}

// kfakeOpts turns options into the cluster's options.
func (o options) kfakeOpts(stderr io.Writer) []kfake.Opt {
	opts := []kfake.Opt{
		kfake.NumBrokers(o.brokers),
		kfake.DefaultNumPartitions(o.partitions),
		kfake.WithLogger(kfake.BasicLogger(stderr, logLevels[o.logLevel])),
	}
	if o.port != 0 {
		ports := make([]int, o.brokers)
		for i := range ports {
			ports[i] = o.port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	var topics []string
	for _, t := range strings.Split(o.topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			topics = append(topics, t)
		}
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(o.partitions), topics...))
	}
	if o.autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if o.dataDir != "" {
		opts = append(opts, kfake.DataDir(o.dataDir))
	}
	if o.sync {
		opts = append(opts, kfake.SyncWrites())
	}
	return opts
}

// run starts the cluster described by args, prints its addresses to
// stdout and serves until ctx ends, then closes the cluster.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	c, err := kfake.NewCluster(o.kfakeOpts(stderr)...)
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	for _, addr := range c.ListenAddrs() {
		if _, err := fmt.Fprintf(stdout, "listening %s\n", addr); err != nil {
			c.Close()
			return fmt.Errorf("writing addresses: %w", err)
		}
	}
	<-ctx.Done()
	c.Close()
	return nil
}
