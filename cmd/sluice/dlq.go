package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const dlqUsage = `Usage: sluice dlq <list|show|replay> [flags] [ID...]

Inspects and re-drives the dead-letter store of a running Sluice through
its admin API.

  list [-pending] [-after ID] [-limit N]   entries, oldest first
  show ID                                  one entry in full
  replay ID...                             re-drive entries to their sink

Flags (every subcommand):
  -admin URL    admin API base URL (default http://127.0.0.1:8088)
  -token TOKEN  bearer token (default: $SLUICE_ADMIN__TOKEN)
`

// cmdDLQ implements `sluice dlq`.
func cmdDLQ(args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("dlq "+sub, stderr)
	base := fs.String("admin", "http://127.0.0.1:8088", "admin API base `URL`")
	token := fs.String("token", envValue(environ, "SLUICE_ADMIN__TOKEN"), "bearer `token`")
	pending := fs.Bool("pending", false, "list only entries not yet replayed")
	after := fs.Uint64("after", 0, "list entries with an id above this")
	limit := fs.Int("limit", 100, "list at most this many entries")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	c := &adminClient{base: strings.TrimRight(*base, "/"), token: *token, http: &http.Client{Timeout: 30 * time.Second}}
	switch sub {
	case "list":
		q := fmt.Sprintf("/api/v1/deadletters?after=%d&limit=%d", *after, *limit)
		if *pending {
			q += "&pending=1"
		}
		var res struct {
			Entries []struct {
				ID       uint64    `json:"id"`
				Time     time.Time `json:"time"`
				Rule     string    `json:"rule"`
				Sink     string    `json:"sink"`
				Topic    string    `json:"topic"`
				ClientID string    `json:"client_id"`
				Attempts int       `json:"attempts"`
				Error    string    `json:"error"`
				Replayed bool      `json:"replayed"`
			} `json:"entries"`
			Total   int `json:"total"`
			Pending int `json:"pending"`
		}
		if err := c.do("GET", q, &res); err != nil {
			fmt.Fprintf(stderr, "sluice dlq list: %v\n", err)
			return 1
		}
		for _, e := range res.Entries {
			state := "pending"
			if e.Replayed {
				state = "replayed"
			}
			fmt.Fprintf(stdout, "%d\t%s\t%s\t%s->%s\t%s\t%s\tattempts=%d\t%s\n", e.ID, e.Time.Format(time.RFC3339), state, e.Rule, e.Sink, e.Topic, e.ClientID, e.Attempts, e.Error)
		}
		fmt.Fprintf(stdout, "%d entries, %d pending\n", res.Total, res.Pending)
		return 0
	case "show":
		if fs.NArg() != 1 {
			fmt.Fprint(stderr, dlqUsage)
			return 2
		}
		var res json.RawMessage
		if err := c.do("GET", "/api/v1/deadletters/"+fs.Arg(0), &res); err != nil {
			fmt.Fprintf(stderr, "sluice dlq show: %v\n", err)
			return 1
		}
		stdout.Write(res)
		return 0
	case "replay":
		if fs.NArg() == 0 {
			fmt.Fprint(stderr, dlqUsage)
			return 2
		}
		code := 0
		for _, id := range fs.Args() {
			if err := c.do("POST", "/api/v1/deadletters/"+id+"/replay", nil); err != nil {
				fmt.Fprintf(stderr, "sluice dlq replay %s: %v\n", id, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "replayed %s\n", id)
		}
		return code
	}
	fmt.Fprintf(stderr, "sluice dlq: unknown subcommand %q\n\n%s", sub, dlqUsage)
	return 2
}

func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

type adminClient struct {
	base, token string
	http        *http.Client
}

func (c *adminClient) do(method, path string, out any) error {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = body
		return nil
	}
	return json.Unmarshal(body, out)
}
