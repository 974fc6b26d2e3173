package main

import (
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/clickhouse"
)

// wireRuleColumns gives every ClickHouse sink the rules' per-target
// column mappings (`columns:`), read from the active rule set: the sink
// checks them against its tables when it connects and writes each mapped
// rule's records with them. A rules reload is picked up at the next write.
func wireRuleColumns(set map[string]sinks.Sink, holder *rules.Holder) {
	for name, sk := range set {
		if ch, ok := sk.(*clickhouse.Sink); ok {
			ch.SetRuleColumns(ruleColumnsOf(holder.Engine, name))
		}
	}
}

// ruleColumnsOf adapts the rules engine's column mappings of one sink to
// the ClickHouse sink's terms, only when the rule set changed.
func ruleColumnsOf(engine func() *rules.Engine, sink string) clickhouse.RuleColumnsFunc {
	return func(known string) (string, []clickhouse.RuleColumns) {
		e := engine()
		v := e.Version().Hash
		if v == known {
			return v, nil
		}
		var out []clickhouse.RuleColumns
		for _, m := range e.ColumnMappings() {
			if m.Sink != sink {
				continue
			}
			rc := clickhouse.RuleColumns{Rule: m.Rule, Target: m.Target, Where: m.Where, Table: m.Topic}
			for _, c := range m.Columns {
				rc.Columns = append(rc.Columns, clickhouse.RuleColumn{Name: c.Name, Expr: c.Expr, Kind: c.Kind})
			}
			out = append(out, rc)
		}
		return v, out
	}
}
