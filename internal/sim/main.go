package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Main runs `sluice sim` with args (the flags after "sim") and returns
// the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice sim: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if o.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "sluice sim: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	statusCtx, stopStatus := context.WithCancel(ctx)
	if !o.quiet {
		wg.Go(func() { printStatus(statusCtx, s, stdout, 5*time.Second) })
	}
	err = s.Run(ctx)
	stopStatus()
	wg.Wait()
	if err != nil {
		fmt.Fprintf(stderr, "sluice sim: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, statusLine(s.Stats(), s.Stats(), 0))
	return 0
}

// options are flags that are not part of Config.
type options struct {
	duration time.Duration
	quiet    bool
}

func parseFlags(args []string, stderr io.Writer) (Config, options, error) {
	cfg, o := DefaultConfig(), options{}
	fs := flag.NewFlagSet("sluice sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: sluice sim [flags]\n\nSimulates lines × machines publishing telemetry to plant/{site}/line/{n}/machine/{m}/telemetry\nand obeying JSON commands on .../cmd ({\"setpoint\": 80} or {\"state\": \"stop\"|\"start\"}).\nWith -format sparkplugb, each line is a Sparkplug B edge node spBv1.0/{site}/.../line{n} and\nits machines devices machine{m}: NBIRTH/DBIRTH with aliases, DDATA with seq, NDEATH as will;\nNCMD Node Control/Rebirth and DCMD writes of setpoint and state are obeyed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	rawURL := fs.String("url", "", "broker URL tcp://host:port (overrides -host and -port)")
	host := fs.String("host", "127.0.0.1", "broker host")
	port := fs.Int("port", 1883, "broker port")
	fs.StringVar(&cfg.Site, "site", cfg.Site, "site name, the {site} topic level")
	fs.IntVar(&cfg.Lines, "lines", cfg.Lines, "number of production lines")
	fs.IntVar(&cfg.Machines, "machines", cfg.Machines, "machines per line")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "telemetry period of each machine")
	fs.DurationVar(&cfg.DriftTau, "drift", cfg.DriftTau, "time constant of the temperature's approach to its set-point")
	fs.Float64Var(&cfg.FaultRate, "fault-rate", cfg.FaultRate, "chance per second that a running machine faults")
	fs.DurationVar(&cfg.FaultDuration, "fault-duration", cfg.FaultDuration, "mean duration of a fault")
	fs.Float64Var(&cfg.ReconnectRate, "reconnect-rate", cfg.ReconnectRate, "chance per second that a machine drops and resumes its connection")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same seed gives the same samples")
	fs.StringVar(&cfg.ReplyTopic, "reply-topic", cfg.ReplyTopic, "where JSON command replies go: {prefix}, {client_id}, {id} (the command's id), e.g. devices/{client_id}/replies/{id}")
	fs.StringVar(&cfg.Username, "username", "", "MQTT username")
	fs.StringVar(&cfg.Password, "password", "", "MQTT password")
	fs.StringVar(&cfg.Format, "format", cfg.Format, "payload format: json, or sparkplugb (each line an edge node, its machines devices)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until SIGINT)")
	fs.BoolVar(&o.quiet, "quiet", false, "no status lines, warnings only")
	if err := fs.Parse(args); err != nil {
		return cfg, o, err
	}
	if fs.NArg() > 0 {
		return cfg, o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.duration < 0 {
		return cfg, o, fmt.Errorf("duration %v is negative", o.duration)
	}
	cfg.Addr = net.JoinHostPort(*host, strconv.Itoa(*port))
	if *rawURL != "" {
		addr, err := addrFromURL(*rawURL)
		if err != nil {
			return cfg, o, err
		}
		cfg.Addr = addr
	}
	return cfg, o, nil
}

// printStatus writes one status line per period until ctx ends.
func printStatus(ctx context.Context, s *Simulator, w io.Writer, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	prev := s.Stats()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cur := s.Stats()
			fmt.Fprintln(w, statusLine(cur, prev, period))
			prev = cur
		}
	}
}

// statusLine summarises cur; with period > 0 it adds the rate since prev.
func statusLine(cur, prev Stats, period time.Duration) string {
	rate := ""
	if period > 0 {
		rate = fmt.Sprintf(" (%.1f/s)", float64(cur.Sent-prev.Sent)/period.Seconds())
	}
	line := fmt.Sprintf("sim: %d machines, sent %d%s, faulted %d now (%d total), reconnects %d, commands %d, dropped %d, unacked %d",
		cur.Machines, cur.Sent, rate, cur.Faulted, cur.Faults, cur.Reconnects, cur.Commands, cur.Dropped, cur.Unacked)
	if cur.Format == FormatSparkplugB {
		line += fmt.Sprintf(", rebirths %d", cur.Rebirths)
	}
	return line
}
