package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect/defdiff"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

type toolDefKey struct{ tenant, server, tool, hash string }

type toolDefSeen struct {
	first, last  time.Time
	firstEventID string
}

var toolDefColumns = []string{
	"tenant", "server_name", "tool_name", "definition_hash", "first_seen", "last_seen",
	"description", "input_schema", "annotations", "source", "first_event_id",
	"facts", "server_version",
}

// loadToolDefs fills the first/last-seen cache from the table once.
func (s *Store) loadToolDefs(ctx context.Context) error {
	if s.toolDefs != nil {
		return nil
	}
	rows, err := s.conn.Query(ctx, "SELECT tenant, server_name, tool_name, definition_hash, min(first_seen), max(last_seen), argMin(first_event_id, first_seen) FROM "+
		s.table("tool_definitions")+" GROUP BY tenant, server_name, tool_name, definition_hash")
	if err != nil {
		return fmt.Errorf("cannot load tool definitions: %w", err)
	}
	defer rows.Close()
	m := map[toolDefKey]toolDefSeen{}
	for rows.Next() {
		var k toolDefKey
		var v toolDefSeen
		if err := rows.Scan(&k.tenant, &k.server, &k.tool, &k.hash, &v.first, &v.last, &v.firstEventID); err != nil {
			return fmt.Errorf("cannot load tool definitions: %w", err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot load tool definitions: %w", err)
	}
	s.toolDefs = m
	return nil
}

// UpsertToolDefinitions maintains the tool inventory from the
// KindToolDefinition events among evs (others are ignored). For each
// (tenant, server, tool, definition hash) it writes one row whose first_seen
// is the earliest time known (from an in-memory cache loaded from the table
// on first use) and whose last_seen is the latest; ReplacingMergeTree keeps
// the row with the greatest last_seen. A changed definition has a new hash
// and therefore gets a new row, which is how a definition change ("rug
// pull") shows up in ToolDefinitionHistory. Replays are harmless.
// Returns the number of rows written.
func (s *Store) UpsertToolDefinitions(ctx context.Context, evs []event.Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	type row struct {
		k    toolDefKey
		seen toolDefSeen
		e    *event.Event
	}
	var order []toolDefKey
	batch := map[toolDefKey]*row{}
	for i := range evs {
		e := &evs[i]
		if e.Kind != event.KindToolDefinition || e.ToolName == "" {
			continue
		}
		if s.toolDefs == nil {
			if err := s.loadToolDefs(ctx); err != nil {
				return 0, err
			}
		}
		k := toolDefKey{e.Tenant, e.ServerName, e.ToolName, e.ToolDefinitionHash}
		t := dt(e.Time)
		r, ok := batch[k]
		if !ok {
			seen, known := s.toolDefs[k]
			if !known {
				seen = toolDefSeen{first: t, last: t, firstEventID: e.EventID}
			}
			r = &row{k: k, seen: seen, e: e}
			batch[k] = r
			order = append(order, k)
		}
		if t.Before(r.seen.first) {
			r.seen.first, r.seen.firstEventID = t, e.EventID
		}
		if !t.Before(r.seen.last) {
			r.seen.last, r.e = t, e
		}
	}
	if len(order) == 0 {
		return 0, nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("tool_definitions")+" ("+strings.Join(toolDefColumns, ", ")+")")
	if err != nil {
		return 0, fmt.Errorf("cannot prepare insert into tool_definitions: %w", err)
	}
	defer b.Abort() //nolint:errcheck
	for _, k := range order {
		r := batch[k]
		src := r.e.Method
		if src == "" {
			src = string(r.e.Source)
		}
		facts := defdiff.Extract(r.e.ToolDescription, r.e.ToolInputSchema, r.e.ToolAnnotations).Encode()
		if err := b.Append(k.tenant, k.server, k.tool, k.hash, r.seen.first, r.seen.last,
			r.e.ToolDescription, r.e.ToolInputSchema, r.e.ToolAnnotations, src, r.seen.firstEventID,
			facts, r.e.ServerVersion); err != nil {
			return 0, &permanentError{fmt.Errorf("cannot append tool definition %s/%s: %w", k.server, k.tool, err)}
		}
	}
	if err := b.Send(); err != nil {
		return 0, fmt.Errorf("cannot insert tool definitions: %w", err)
	}
	// Only now that the rows are stored does the cache learn them.
	for _, k := range order {
		s.toolDefs[k] = batch[k].seen
	}
	return len(order), nil
}
