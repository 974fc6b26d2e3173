package sparkplug

import (
	"reflect"
	"testing"
)

func TestRows(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want []map[string]any
	}{
		{"not a message", "x", nil},
		{"two metrics", map[string]any{
			"group_id": "g", "edge_node_id": "e", "device_id": "d", "message_type": "DDATA", "seq": int64(4), "timestamp": int64(100),
			"metrics": []any{
				map[string]any{"name": "a", "datatype": "Double", "value": 1.5},
				map[string]any{"name": "b", "datatype": "Int32", "value": int64(2), "timestamp": int64(90)},
			},
		}, []map[string]any{
			{"name": "a", "datatype": "Double", "value": 1.5, "group_id": "g", "edge_node_id": "e", "device_id": "d",
				"message_type": "DDATA", "seq": int64(4), "timestamp": int64(100), "payload_timestamp": int64(100)},
			{"name": "b", "datatype": "Int32", "value": int64(2), "group_id": "g", "edge_node_id": "e", "device_id": "d",
				"message_type": "DDATA", "seq": int64(4), "timestamp": int64(90), "payload_timestamp": int64(100)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rows(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Rows = %v\nwant %v", got, tt.want)
			}
		})
	}
}
