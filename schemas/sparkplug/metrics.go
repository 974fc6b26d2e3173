package sparkplug

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	messages *prometheus.CounterVec
	// byType holds messages' counter of each message type, by
	// typeIndex, looked up once rather than per message.
	byType         [len(messageTypes)]prometheus.Counter
	rebirths       *prometheus.CounterVec
	seqGaps        prometheus.Counter
	unknownAliases prometheus.Counter
	staleDeaths    prometheus.Counter
	nodesOnline    prometheus.Gauge
	devicesOnline  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_sparkplug_messages_total", Help: "Sparkplug B messages decoded, by message type.",
		}, []string{"type"}),
		rebirths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_sparkplug_rebirth_requests_total", Help: "Rebirth commands requested from edge nodes, by reason.",
		}, []string{"reason"}),
		seqGaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sparkplug_seq_gaps_total", Help: "Messages whose seq did not follow the edge node's previous one.",
		}),
		unknownAliases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sparkplug_unknown_aliases_total", Help: "Metrics whose alias no birth certificate defined.",
		}),
		staleDeaths: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sparkplug_stale_deaths_total", Help: "NDEATHs whose bdSeq named an earlier session, ignored.",
		}),
		nodesOnline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_sparkplug_edge_nodes_online", Help: "Edge nodes born and not dead.",
		}),
		devicesOnline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_sparkplug_devices_online", Help: "Devices born and not dead.",
		}),
	}
	for i, t := range messageTypes {
		m.byType[i] = m.messages.WithLabelValues(t)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.rebirths, m.seqGaps, m.unknownAliases, m.staleDeaths, m.nodesOnline, m.devicesOnline} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering sparkplug metrics: %w", err)
			}
		}
	}
	return m, nil
}

// messageTypes are the message types of decoded payloads (not STATE).
var messageTypes = [...]string{NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA, DDATA, NCMD, DCMD}

// message counts a decoded message of type t.
func (m *metrics) message(t string) {
	for i, mt := range messageTypes {
		if mt == t {
			m.byType[i].Inc()
			return
		}
	}
	m.messages.WithLabelValues(t).Inc()
}
