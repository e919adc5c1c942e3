package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// SuppressedFindings returns the latest version of every suppressing
// finding (suppress_key set; docs/rules.md "suppress") re-stored at or after
// since: the windows the respond role reloads when its findings partitions
// change. The latest version is the one with the highest suppress_pos (each
// count is a new row; inserted_at has one-second resolution).
func (s *Store) SuppressedFindings(ctx context.Context, since time.Time) ([]event.Finding, error) {
	q := `SELECT finding_id, argMax(tenant, suppress_pos), argMax(ts, suppress_pos), argMax(rule_id, suppress_pos),
 argMax(rule_version, suppress_pos), argMax(rule_title, suppress_pos), argMax(rule_kind, suppress_pos),
 argMax(toString(severity), suppress_pos), argMax(tags, suppress_pos), argMax(group_key, suppress_pos),
 argMax(summary, suppress_pos), argMax(agent_id, suppress_pos), argMax(user_id, suppress_pos),
 argMax(session_key, suppress_pos), argMax(server_name, suppress_pos), argMax(tool_name, suppress_pos),
 argMax(event_ids, suppress_pos), argMax(evidence, suppress_pos), argMax(incident_id, suppress_pos),
 argMax(suppress_key, suppress_pos), argMax(suppress_window, suppress_pos), max(suppressed_count),
 argMax(last_event_id, suppress_pos), argMax(last_seen, suppress_pos), max(suppress_pos)
 FROM ` + s.table("findings") + `
 WHERE suppress_key != '' GROUP BY finding_id HAVING max(inserted_at) >= ?`
	rows, err := s.conn.Query(ctx, q, dt(since))
	if err != nil {
		return nil, fmt.Errorf("cannot query suppressed findings: %w", err)
	}
	defer rows.Close()
	var out []event.Finding
	for rows.Next() {
		var f event.Finding
		var sev string
		var win uint32
		if err := rows.Scan(&f.FindingID, &f.Tenant, &f.Time, &f.RuleID, &f.RuleVersion, &f.RuleTitle, &f.RuleKind, &sev,
			&f.Tags, &f.GroupKey, &f.Summary, &f.AgentID, &f.UserID, &f.SessionKey, &f.ServerName, &f.ToolName,
			&f.EventIDs, &f.Evidence, &f.IncidentID, &f.SuppressKey, &win, &f.SuppressedCount, &f.LastEventID,
			&f.LastSeen, &f.SuppressPos); err != nil {
			return nil, fmt.Errorf("cannot scan suppressed finding: %w", err)
		}
		f.Severity, f.SuppressWindow = event.Severity(sev), time.Duration(win)*time.Second
		f.Time, f.LastSeen = f.Time.UTC(), f.LastSeen.UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read suppressed findings: %w", err)
	}
	return out, nil
}
