package incident

import (
	"reflect"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// FindingsJSON encodes findings with their ClickHouse column names (the `ch`
// tags) as JSON keys: event.Finding has no json tags, and the API's
// contract is column names.
func FindingsJSON(fs []event.Finding) []map[string]any {
	out := make([]map[string]any, 0, len(fs))
	t := reflect.TypeFor[event.Finding]()
	for _, f := range fs {
		v := reflect.ValueOf(f)
		m := make(map[string]any, t.NumField())
		for i := range t.NumField() {
			name := t.Field(i).Tag.Get("ch")
			if name == "" || name == "-" {
				continue
			}
			val := v.Field(i).Interface()
			if s, ok := val.([]string); ok && s == nil {
				val = []string{}
			}
			m[name] = val
		}
		out = append(out, m)
	}
	return out
}
