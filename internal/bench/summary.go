package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// summary is the result of a run, printed as text or (with -json) as one
// JSON object. Counts are messages; rates are messages per second.
type summary struct {
	Mode     string `json:"mode"`
	Broker   string `json:"broker"`
	Protocol string `json:"protocol"`
	QoS      int    `json:"qos"`
	Size     int    `json:"size"`
	Pubs     int    `json:"pubs"`
	Subs     int    `json:"subs"`

	// Traffic modes.
	Seconds    float64   `json:"seconds"`              // publishing (or, in sub mode, receiving) time
	Sent       int64     `json:"sent"`                 // PUBLISHes written by publishers
	Acked      int64     `json:"acked"`                // QoS 1/2 flows completed successfully
	Rejected   int64     `json:"rejected"`             // QoS 1/2 flows the broker refused (v5 reason >= 0x80)
	Unacked    int64     `json:"unacked"`              // QoS 1/2 still in flight when the run ended
	Received   int64     `json:"received"`             // PUBLISHes delivered to subscribers
	Expected   int64     `json:"expected"`             // sent x subscribers (fanin, fanout)
	Lost       int64     `json:"lost"`                 // expected - distinct delivered (fanin, fanout); sequence gaps (sub)
	Duplicates int64     `json:"duplicates"`           // deliveries of a message already received
	Foreign    int64     `json:"foreign"`              // messages not from this run's publishers
	SentRate   float64   `json:"sent_rate"`            // sent / seconds
	RecvRate   float64   `json:"recv_rate"`            // received / (first publish .. last delivery)
	Latency    *latency  `json:"latency_ms,omitempty"` // end to end, send stamp to receipt
	Connect    *connStat `json:"connect,omitempty"`    // conn mode
	Errors     int64     `json:"errors"`               // connection and protocol errors
	ErrorList  []string  `json:"error_samples,omitempty"`
	Dropped    int64     `json:"dropped"`   // connections lost during the run
	Clients    int       `json:"clients"`   // connections attempted
	Connected  int       `json:"connected"` // connections established
}

// latency holds quantiles in milliseconds.
type latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   uint64  `json:"n"`
}

// connStat is the conn mode result.
type connStat struct {
	Seconds      float64  `json:"seconds"` // time to open every connection
	Rate         float64  `json:"rate"`    // connections per second
	Failed       int      `json:"failed"`
	Latency      *latency `json:"latency_ms,omitempty"` // dial + CONNECT..CONNACK
	HeldSeconds  float64  `json:"held_seconds"`
	RSSBeforeKB  int64    `json:"rss_before_kb,omitempty"` // broker VmRSS before connecting (-pid)
	RSSHeldKB    int64    `json:"rss_held_kb,omitempty"`   // broker VmRSS at the end of the hold (-pid)
	RSSPerConnKB float64  `json:"rss_per_conn_kb,omitempty"`
}

func newLatency(h *histogram) *latency {
	if h.n == 0 {
		return nil
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return &latency{P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99)), Max: ms(h.max), N: h.n}
}

func (s *summary) writeText(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "sluice bench %s  %s  MQTT %s", s.Mode, s.Broker, s.Protocol)
	if s.Connect == nil {
		fmt.Fprintf(&b, "  QoS %d  %d B  %d pubs -> %d subs  %.1fs", s.QoS, s.Size, s.Pubs, s.Subs, s.Seconds)
	}
	b.WriteString("\n")
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-11s "+format+"\n", append([]any{label}, args...)...)
	}
	if c := s.Connect; c != nil {
		line("connected", "%s of %s in %.2fs  (%s conn/s)", count(int64(s.Connected)), count(int64(s.Clients)), c.Seconds, rate(c.Rate))
		line("failed", "%d", c.Failed)
		if c.Latency != nil {
			line("connect", "p50 %s  p90 %s  p99 %s  max %s", ms(c.Latency.P50), ms(c.Latency.P90), ms(c.Latency.P99), ms(c.Latency.Max))
		}
		line("held", "%.1fs, dropped %d", c.HeldSeconds, s.Dropped)
		if c.RSSHeldKB > 0 {
			line("broker rss", "%s KiB -> %s KiB  (%.2f KiB per connection)", count(c.RSSBeforeKB), count(c.RSSHeldKB), c.RSSPerConnKB)
		}
	} else {
		if s.Pubs > 0 {
			line("sent", "%-12s %s msg/s", count(s.Sent), rate(s.SentRate))
			if s.QoS > 0 {
				line("acked", "%-12s rejected %d, unacked %d", count(s.Acked), s.Rejected, s.Unacked)
			}
		}
		if s.Subs > 0 {
			line("received", "%-12s %s msg/s delivered", count(s.Received), rate(s.RecvRate))
			if l := s.Latency; l != nil {
				line("latency", "p50 %s  p90 %s  p99 %s  max %s", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
			}
			lost := fmt.Sprintf("%s", count(s.Lost))
			if s.Expected > 0 {
				lost += fmt.Sprintf(" of %s expected (%.3f%%)", count(s.Expected), 100*float64(s.Lost)/float64(s.Expected))
			} else if s.Pubs == 0 {
				lost += " (sequence gaps)"
			}
			line("LOST", "%s  duplicates %d", lost, s.Duplicates)
			if s.Foreign > 0 {
				line("foreign", "%d (not from this run's publishers)", s.Foreign)
			}
		}
		if s.Connected < s.Clients {
			line("connected", "%d of %d", s.Connected, s.Clients)
		}
		if s.Dropped > 0 {
			line("dropped", "%d connections", s.Dropped)
		}
	}
	line("errors", "%d", s.Errors)
	for _, e := range s.ErrorList {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	io.WriteString(w, b.String())
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// rate formats a per-second figure compactly.
func rate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}

// ms formats milliseconds with a sensible unit.
func ms(v float64) string {
	d := time.Duration(v * 1e6)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", v*1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.2fs", v/1e3)
	}
}
