package console

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/rules"
)

// TapMessage is one "message" event of the live tap.
type TapMessage struct {
	// Seq numbers the tap's messages from 1, skipped and dropped ones
	// included, so gaps show.
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Topic    string    `json:"topic"`
	ClientID string    `json:"client_id"`
	Username string    `json:"username,omitempty"`
	QoS      byte      `json:"qos"`
	Retain   bool      `json:"retain"`
	Payload  Preview   `json:"payload"`
	// DecodeError is why the payload could not be decoded, if it could not.
	DecodeError string `json:"decode_error,omitempty"`
	// DeadLettered: a schema binding sent the message to the dead-letter
	// store (DecodeError says why); no rule saw it.
	DeadLettered bool `json:"dead_lettered"`
	// Rules are each rule's decision, in evaluation order.
	Rules []TapRule `json:"rules"`
}

// TapRule is one rule's decision on a tapped message.
type TapRule struct {
	Rule string `json:"rule"`
	// Filter is the filter that matched the topic; "" when none did.
	Filter  string `json:"filter,omitempty"`
	Matched bool   `json:"matched"`
	// When is the condition's result: "", "true", "false" or "error".
	When string `json:"when"`
	// Outcome is unmatched, filtered, routed or error.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	// Lets are the let values, rendered.
	Lets    []TapLet    `json:"lets,omitempty"`
	Outputs []TapOutput `json:"outputs,omitempty"`
}

// TapLet is one evaluated let.
type TapLet struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TapOutput is where one output of a rule went.
type TapOutput struct {
	Sink  string `json:"sink,omitempty"`
	Topic string `json:"topic,omitempty"`
	Key   string `json:"key,omitempty"`
	// Value is the transformed body; nil when the raw payload is sent.
	Value *Preview `json:"value,omitempty"`
	// DeadLetter: the output goes to the dead-letter store (Error says
	// why) instead of Sink.
	DeadLetter bool   `json:"dead_letter,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Preview is a bounded view of a body: UTF-8 text when it is, else base64.
type Preview struct {
	Size      int    `json:"size"`
	Encoding  string `json:"encoding"`
	Text      string `json:"text"`
	Truncated bool   `json:"truncated,omitempty"`
}

// preview shows at most limit bytes of b.
func preview(b []byte, limit int) Preview {
	p := Preview{Size: len(b), Encoding: "utf-8"}
	cut := b
	if len(cut) > limit {
		cut, p.Truncated = cut[:limit], true
		// Do not show half a character cut at the limit.
		i := len(cut) - 1
		for i > 0 && len(cut)-i < utf8.UTFMax && !utf8.RuneStart(cut[i]) {
			i--
		}
		if i >= 0 && !utf8.FullRune(cut[i:]) {
			cut = cut[:i]
		}
	}
	if !utf8.Valid(cut) {
		cut = b[:min(len(b), limit)]
		p.Encoding, p.Text = "base64", base64.StdEncoding.EncodeToString(cut)
		return p
	}
	p.Text = string(cut)
	return p
}

// TapStatus is the tap's "status" event, sent when its counters change.
type TapStatus struct {
	// Sent is the messages sent to this browser.
	Sent int64 `json:"sent"`
	// Dropped is the messages the tap's buffer dropped (the browser or the
	// explaining fell behind).
	Dropped int64 `json:"dropped"`
	// Skipped is the messages over Options.TapRate, not explained.
	Skipped int64 `json:"skipped"`
}

// serveTap streams the messages matching ?filter= (default "#") with each
// rule's decision as "message" events, plus "status" events with the
// drop counters once a second when they change.
func (c *Console) serveTap(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("filter")
	if filter == "" {
		filter = "#"
	}
	tap, err := c.opts.Pipeline.OpenTap(filter, c.opts.TapBuffer)
	if errors.Is(err, ingest.ErrTooManyTaps) {
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	} else if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	defer tap.Close()
	log := c.log.With("filter", filter)
	log.Info("tap opened")
	s, err := startSSE(w)
	if err == nil {
		err = s.json("open", map[string]any{"filter": filter, "buffer": c.opts.TapBuffer, "rate": c.opts.TapRate})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		st       TapStatus
		reported TapStatus
		seq      int64
		budget   = c.opts.TapRate // messages left in this second
		idle     time.Duration
	)
	for err == nil {
		select {
		case <-r.Context().Done():
			err = r.Context().Err()
		case <-c.done:
			err = errors.New("shutting down")
		case ev := <-tap.Events():
			seq++
			if budget == 0 {
				st.Skipped++
				continue
			}
			budget--
			st.Sent++
			idle = 0
			err = s.json("message", c.tapMessage(seq+tap.Dropped(), &ev))
		case <-tick.C:
			budget = c.opts.TapRate
			st.Dropped = tap.Dropped()
			if st != reported {
				err = s.json("status", st)
				reported, idle = st, 0
			} else if idle += time.Second; idle >= heartbeat {
				err = s.ping()
				idle = 0
			}
		}
	}
	log.Info("tap closed", "sent", st.Sent, "dropped", tap.Dropped(), "skipped", st.Skipped, "reason", err)
}

// tapMessage renders ev with the active rules' decisions.
func (c *Console) tapMessage(seq int64, ev *ingest.TapEvent) TapMessage {
	m := ev.Msg
	tm := TapMessage{
		Seq: seq, Time: ev.At, Topic: m.Topic, ClientID: m.ClientID, Username: m.Username, QoS: m.QoS,
		Retain: m.Retain, Payload: preview(m.Payload, c.opts.PreviewBytes), DeadLettered: ev.DeadLettered,
		Rules: []TapRule{},
	}
	if ev.DecodeErr != nil {
		tm.DecodeError = ev.DecodeErr.Error()
	}
	if ev.DeadLettered {
		return tm // the pipeline stored it before any rule ran
	}
	for _, d := range c.opts.Rules.Decide(&ev.Input) {
		tm.Rules = append(tm.Rules, c.tapRule(d))
	}
	return tm
}

func (c *Console) tapRule(d rules.Decision) TapRule {
	tr := TapRule{
		Rule: d.Rule, Filter: d.Filter, Matched: d.Filter != "", When: d.WhenResult,
		Outcome: string(d.Outcome), Error: d.Err,
	}
	for _, l := range d.Lets {
		v := rules.Text(l.Value)
		if len(v) > c.opts.PreviewBytes {
			v = preview([]byte(v), c.opts.PreviewBytes).Text
		}
		tr.Lets = append(tr.Lets, TapLet{Name: l.Name, Value: v})
	}
	for _, o := range d.Outputs {
		to := TapOutput{Sink: o.Sink, Topic: o.Topic, DeadLetter: o.Err != "", Error: o.Err}
		if o.Key != nil {
			to.Key = preview(o.Key, c.opts.PreviewBytes).Text
		}
		if o.Value != nil {
			p := preview(o.Value, c.opts.PreviewBytes)
			to.Value = &p
		}
		tr.Outputs = append(tr.Outputs, to)
	}
	return tr
}
