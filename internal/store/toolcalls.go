package store

import (
	"context"
	"fmt"
	"time"
)

// ToolCallsQuery selects the distinct tool calls (agent, server, tool,
// arguments) of a tenant, for learning usage profiles (internal/profile).
type ToolCallsQuery struct {
	Tenant string    // required
	Agent  string    // "" = every agent of the tenant
	From   time.Time // inclusive
	To     time.Time // exclusive
	// MaxRows bounds the distinct rows read. Default 1,000,000.
	MaxRows int
}

// ToolCall is one distinct call shape with how often and when it was seen.
type ToolCall struct {
	Agent, Server, Tool, Arguments string
	Calls                          uint64
	First, Last                    time.Time
}

// ToolCalls streams the distinct tools/call rows of q to fn (denied calls
// excluded: the gateway already refused them). It reports whether MaxRows
// cut the result. Replays and several observers of one call only repeat a
// row, which the GROUP BY folds, so no FINAL is needed for a set.
func (s *Store) ToolCalls(ctx context.Context, q ToolCallsQuery, fn func(ToolCall) error) (truncated bool, err error) {
	if q.Tenant == "" {
		return false, fmt.Errorf("cannot read tool calls: tenant is required")
	}
	if q.MaxRows <= 0 {
		q.MaxRows = 1_000_000
	}
	var w where
	w.add("tenant = ?", q.Tenant)
	if q.Agent != "" {
		w.add("agent_id = ?", q.Agent)
	}
	w.add("method = 'tools/call'")
	w.add("outcome != 'denied'")
	w.add("agent_id != ''")
	w.add("ts >= ?", q.From.UTC().Truncate(time.Second))
	w.add("ts < ?", q.To.UTC())
	sql := "SELECT agent_id, server_name, tool_name, arguments, count(), min(ts), max(ts) FROM " + s.table("events") +
		" WHERE " + w.String() + " GROUP BY agent_id, server_name, tool_name, arguments" +
		" ORDER BY agent_id, server_name, tool_name, arguments LIMIT " + fmt.Sprint(q.MaxRows+1)
	rows, err := s.conn.Query(ctx, sql, w.args...)
	if err != nil {
		return false, fmt.Errorf("cannot query tool calls: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == q.MaxRows {
			return true, nil
		}
		n++
		var c ToolCall
		if err := rows.Scan(&c.Agent, &c.Server, &c.Tool, &c.Arguments, &c.Calls, &c.First, &c.Last); err != nil {
			return false, fmt.Errorf("cannot read tool call: %w", err)
		}
		c.First, c.Last = c.First.UTC(), c.Last.UTC()
		if err := fn(c); err != nil {
			return false, err
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("cannot read tool calls: %w", err)
	}
	return false, nil
}
