// Command kcli is the manufacturing example's small Kafka client, so the
// example needs no Kafka tooling: it produces one record (a command for
// a machine) or prints the records of a topic (alarms, command status
// events), one a line as "key value".
//
//	go run ./examples/manufacturing/kcli produce -topic machine-commands -key K -header command-id=c42 '{"...": 1}'
//	go run ./examples/manufacturing/kcli consume -topic plant-alarms
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
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kcli: %v\n", err)
		os.Exit(1)
	}
}

const usage = `Usage:
  kcli produce -topic T [-key K] [-header name=value ...] VALUE
  kcli consume -topic T [-n N] [-idle D]
`

// headers collects repeated -header name=value flags.
type headers []kgo.RecordHeader

func (h *headers) String() string { return fmt.Sprint(*h) }

func (h *headers) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("header %q: want name=value", s)
	}
	*h = append(*h, kgo.RecordHeader{Key: k, Value: []byte(v)})
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "produce" && args[0] != "consume") {
		fmt.Fprint(stderr, usage)
		return errors.New("want produce or consume")
	}
	mode := args[0]
	fs := flag.NewFlagSet("kcli "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma-separated")
	topic := fs.String("topic", "", "topic (required)")
	key := fs.String("key", "", "record key (produce)")
	var hs headers
	fs.Var(&hs, "header", "record header name=value, repeatable (produce)")
	n := fs.Int("n", 0, "stop after N records (consume; 0: until Ctrl-C or -idle)")
	idle := fs.Duration("idle", 0, "stop after this long without a record (consume; 0: never)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *topic == "" {
		return errors.New("-topic is required")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(*brokers, ",")...)}
	if mode == "consume" {
		opts = append(opts, kgo.ConsumeTopics(*topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	defer cl.Close()
	if mode == "produce" {
		if fs.NArg() != 1 {
			return errors.New("produce takes one VALUE argument")
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r := &kgo.Record{Topic: *topic, Value: []byte(fs.Arg(0)), Headers: hs}
		if *key != "" {
			r.Key = []byte(*key)
		}
		if err := cl.ProduceSync(pctx, r).FirstErr(); err != nil {
			return fmt.Errorf("producing to %s: %w", *topic, err)
		}
		fmt.Fprintf(stdout, "produced %s[%d]@%d\n", r.Topic, r.Partition, r.Offset)
		return nil
	}
	return consume(ctx, cl, stdout, *n, *idle)
}

// consume prints records as "key value" until n records, idle time
// without one, or ctx ends.
func consume(ctx context.Context, cl *kgo.Client, w io.Writer, n int, idle time.Duration) error {
	seen := 0
	for {
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			fctx, cancel = context.WithTimeout(ctx, idle)
		}
		fs := cl.PollFetches(fctx)
		cancel()
		if ctx.Err() != nil || (idle > 0 && fctx.Err() != nil && fs.NumRecords() == 0) {
			return nil
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) {
				return fmt.Errorf("fetching %s[%d]: %w", e.Topic, e.Partition, e.Err)
			}
		}
		for _, r := range fs.Records() {
			fmt.Fprintf(w, "%s %s\n", r.Key, r.Value)
			if seen++; n > 0 && seen >= n {
				return nil
			}
		}
	}
}
