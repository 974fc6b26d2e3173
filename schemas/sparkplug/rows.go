package sparkplug

// Rows flattens a message decoded by Decoder.Decode into one row per
// metric, the shape a ClickHouse table of metrics wants: each row holds the
// metric's fields plus group_id, edge_node_id, device_id (when set),
// message_type and seq, and the payload's timestamp as payload_timestamp.
// A metric without its own timestamp takes the payload's. Any other value
// gives no rows.
func Rows(decoded any) []map[string]any {
	msg, ok := decoded.(map[string]any)
	if !ok {
		return nil
	}
	metrics, _ := msg["metrics"].([]any)
	rows := make([]map[string]any, 0, len(metrics))
	for _, m := range metrics {
		mm, ok := m.(map[string]any)
		if !ok {
			continue
		}
		row := make(map[string]any, len(mm)+6)
		for k, v := range mm {
			row[k] = v
		}
		for _, k := range [...]string{"group_id", "edge_node_id", "device_id", "message_type", "seq"} {
			if v, ok := msg[k]; ok {
				row[k] = v
			}
		}
		if ts, ok := msg["timestamp"]; ok {
			row["payload_timestamp"] = ts
			if _, own := row["timestamp"]; !own {
				row["timestamp"] = ts
			}
		}
		rows = append(rows, row)
	}
	return rows
}
