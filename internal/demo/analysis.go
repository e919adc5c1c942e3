package demo

import (
	"context"
	"fmt"
	"time"
)

// queryClickHouse fills the report from ClickHouse: the event count and the
// incidents (current version of each), worst first.
func (s *Stack) queryClickHouse(ctx context.Context, r *Report) error {
	conn, err := s.CH.Open(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&r.EventsInClickHouse); err != nil {
		return fmt.Errorf("cannot count events: %w", err)
	}
	// A suppressing finding is stored in versions, each counting more of
	// its window's hits (docs/rules.md suppress): the latest counts.
	frows, err := conn.Query(ctx, `SELECT rule_id, toString(max(severity)), count(), sum(suppressed)
	FROM (SELECT rule_id, finding_id, max(severity) AS severity, max(suppressed_count) AS suppressed FROM findings GROUP BY rule_id, finding_id)
	GROUP BY rule_id ORDER BY rule_id`)
	if err != nil {
		return fmt.Errorf("cannot query findings: %w", err)
	}
	r.Findings = r.Findings[:0]
	for frows.Next() {
		var f FindingRow
		if err := frows.Scan(&f.RuleID, &f.Severity, &f.Count, &f.Suppressed); err != nil {
			frows.Close()
			return fmt.Errorf("cannot read findings: %w", err)
		}
		r.Findings = append(r.Findings, f)
	}
	frows.Close()
	if err := frows.Err(); err != nil {
		return fmt.Errorf("cannot read findings: %w", err)
	}

	rows, err := conn.Query(ctx, `SELECT incident_id, rule_id, toString(severity), toString(status), tenant,
		agent_id, summary, finding_count
	FROM incidents FINAL
	ORDER BY severity DESC, first_seen`)
	if err != nil {
		return fmt.Errorf("cannot query incidents: %w", err)
	}
	defer rows.Close()
	r.Incidents = r.Incidents[:0]
	for rows.Next() {
		var in IncidentRow
		var findings uint32
		if err := rows.Scan(&in.ID, &in.RuleID, &in.Severity, &in.Status, &in.Tenant, &in.Agent, &in.Summary, &findings); err != nil {
			return fmt.Errorf("cannot read incident: %w", err)
		}
		in.Findings = uint64(findings)
		r.Incidents = append(r.Incidents, in)
	}
	return rows.Err()
}

// waitForEvents waits until ClickHouse holds want events (the analyzer has
// consumed everything), polling.
func (s *Stack) waitForEvents(ctx context.Context, want uint64, timeout time.Duration) (uint64, error) {
	conn, err := s.CH.Open(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	var n uint64
	for {
		err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events").Scan(&n)
		if err == nil && n >= want {
			return n, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return n, fmt.Errorf("cannot count events: %w", err)
			}
			return n, fmt.Errorf("clickhouse holds %d events, want %d", n, want)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
