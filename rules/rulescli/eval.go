package rulescli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/rules"
)

// props collects repeated --prop name=value flags.
type props map[string]string

func (p props) String() string { return fmt.Sprint(map[string]string(p)) }

func (p props) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want name=value, got %q", s)
	}
	p[k] = v
	return nil
}

// files collects repeated --rules flags.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice rules eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		s         rules.Sample
		qos       uint
		config    string
		ruleFiles files
		payload   string
		hasProps  = props{}
	)
	fs.StringVar(&config, "c", "", "main config file (its rules and rules_files)")
	fs.Var(&ruleFiles, "rules", "rule file, directory or glob (repeatable; instead of -c)")
	fs.StringVar(&s.Topic, "topic", "", "message topic (required)")
	fs.StringVar(&payload, "payload", "", "message payload")
	fs.StringVar(&s.ClientID, "clientid", "sluice-eval", "publishing client id")
	fs.StringVar(&s.Username, "username", "", "publishing user name")
	fs.UintVar(&qos, "qos", 0, "message QoS")
	fs.BoolVar(&s.Retain, "retain", false, "message RETAIN flag")
	fs.StringVar(&s.ContentType, "content-type", "", "v5 content type")
	fs.Var(hasProps, "prop", "v5 user property name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if s.Topic == "" || (config == "") == (len(ruleFiles) == 0) || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sluice rules eval: --topic and one of -c CONFIG or --rules are required")
		fs.Usage()
		return 2
	}
	s.QoS, s.Payload, s.Props = byte(qos), payload, hasProps

	var (
		eng  *rules.Engine
		errs []error
	)
	if config != "" {
		eng, errs = rules.LoadConfigFile(config, rules.Options{})
	} else {
		eng, errs = rules.LoadFiles(ruleFiles, rules.Options{})
	}
	if errs != nil {
		printErrors(stderr, errs)
		return 2
	}
	in, err := s.Input()
	if err != nil {
		fmt.Fprintf(stderr, "sluice rules eval: %v\n", err)
		return 2
	}
	explain(stdout, in, eng)
	return 0
}

// explain prints what in does, rule by rule.
func explain(w io.Writer, in *ingest.Input, eng *rules.Engine) {
	fmt.Fprintf(w, "message: topic=%s qos=%d clientid=%s payload=%s\n", in.Msg.Topic, in.Msg.QoS, in.Msg.ClientID,
		strconv.Quote(string(in.Msg.Payload)))
	if in.DecodeErr != nil {
		fmt.Fprintf(w, "  payload is not JSON (%v): payload is nil, raw still works\n", in.DecodeErr)
	}
	total := 0
	for _, tr := range eng.Explain(in) {
		fmt.Fprintf(w, "\nrule %s: ", tr.Rule)
		if tr.Filter == "" {
			fmt.Fprintf(w, "not matched: the topic matches none of its filters %v\n", tr.Filters)
			continue
		}
		fmt.Fprintf(w, "topic matches %q\n", tr.Filter)
		for _, l := range tr.Lets {
			fmt.Fprintf(w, "  let %s = %s\n", l.Name, rules.Text(l.Value))
		}
		if tr.When != "" {
			fmt.Fprintf(w, "  when = %s\n", tr.When)
		}
		switch {
		case tr.Err != "":
			fmt.Fprintf(w, "  error: %s\n", tr.Err)
		case !tr.Passed:
			fmt.Fprintln(w, "  not applied: when is false")
		}
		for _, o := range tr.Outputs {
			total++
			if o.Err != "" {
				fmt.Fprintf(w, "  -> dead-letter store (on_error: dead_letter)")
				if o.Sink != "" {
					fmt.Fprintf(w, " instead of sink %s", o.Sink)
				}
				fmt.Fprintln(w)
				continue
			}
			fmt.Fprintf(w, "  -> sink %s", o.Sink)
			if o.Topic != "" {
				fmt.Fprintf(w, " topic=%s", o.Topic)
			}
			if o.Key != nil {
				fmt.Fprintf(w, " key=%s", strconv.Quote(string(o.Key)))
			}
			if o.Sink == rules.RepublishSink {
				fmt.Fprintf(w, " qos=%d retain=%t", o.QoS, o.Retain)
			}
			if o.Mode != "" {
				fmt.Fprintf(w, " durability=%s", o.Mode)
			}
			if o.Value == nil {
				fmt.Fprintln(w, " value=(raw payload)")
			} else {
				fmt.Fprintf(w, " value=%s\n", o.Value)
			}
		}
		if tr.Err != "" && len(tr.Outputs) == 0 {
			fmt.Fprintln(w, "  -> skipped (on_error: skip)")
		}
	}
	fmt.Fprintf(w, "\n%d output(s)\n", total)
}
