package playbook

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store keeps run state (*CHStore). The Runner saves every change of a run
// before it acts on it, so a run's stored version is never behind what the
// run did (except an http step's request in flight, which a resumed run
// sends again with the same Idempotency-Key).
type Store interface {
	// SaveRun writes a new version of run (run.Version set by the Runner).
	SaveRun(ctx context.Context, run Run) error
	// LoadRuns returns the current version of every run that is not
	// finished (running or waiting for approval).
	LoadRuns(ctx context.Context) ([]Run, error)
	// GetRun returns the current version of one run or ErrNotFound.
	GetRun(ctx context.Context, runID string) (Run, error)
	// RunsOf returns the current versions of an incident's runs, oldest first.
	RunsOf(ctx context.Context, incidentID string) ([]Run, error)
}

// CHStore keeps runs in ClickHouse `playbook_runs` (schema/0020), one row
// per version, ReplacingMergeTree(version).
type CHStore struct {
	conn driver.Conn
	db   string
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewCHStore wraps conn; database is the one holding the mcpwatch tables.
func NewCHStore(conn driver.Conn, database string) (*CHStore, error) {
	if !identRe.MatchString(database) {
		return nil, fmt.Errorf("cannot use database name %q: not an identifier", database)
	}
	return &CHStore{conn: conn, db: database}, nil
}

const runCols = `run_id, version, tenant, rule_id, group_key, incident_id, playbook, status, steps, created_at, updated_at`

// SaveRun appends one version of a run.
func (s *CHStore) SaveRun(ctx context.Context, run Run) error {
	steps, err := json.Marshal(run.Steps)
	if err != nil {
		return fmt.Errorf("cannot encode playbook run steps: %w", err)
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".playbook_runs ("+runCols+")")
	if err != nil {
		return fmt.Errorf("cannot prepare playbook run insert: %w", err)
	}
	defer b.Abort()
	if err := b.Append(run.RunID, run.Version, run.Tenant, run.RuleID, run.GroupKey, run.IncidentID, run.Playbook,
		run.Status, string(steps), run.CreatedAt.UTC(), run.UpdatedAt.UTC()); err != nil {
		return fmt.Errorf("cannot append playbook run row: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert playbook run: %w", err)
	}
	return nil
}

// runs reads the newest version of each run matching where, which must
// test only columns that every version of a run shares (run_id,
// incident_id, …); having filters the newest versions.
func (s *CHStore) runs(ctx context.Context, where, having string, args ...any) ([]Run, error) {
	q := `SELECT run_id, max(version), any(tenant), any(rule_id), any(group_key), any(incident_id), any(playbook),
 toString(argMax(status, version)) AS last_status, argMax(steps, version), min(created_at), max(updated_at)
 FROM ` + s.db + `.playbook_runs ` + where + ` GROUP BY run_id ` + having + ` ORDER BY min(created_at), run_id`
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query playbook runs: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		var r Run
		var steps string
		if err := rows.Scan(&r.RunID, &r.Version, &r.Tenant, &r.RuleID, &r.GroupKey, &r.IncidentID, &r.Playbook,
			&r.Status, &steps, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("cannot scan playbook run: %w", err)
		}
		if err := json.Unmarshal([]byte(steps), &r.Steps); err != nil {
			return nil, fmt.Errorf("cannot decode playbook run %s steps: %w", r.RunID, err)
		}
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read playbook runs: %w", err)
	}
	return out, nil
}

// LoadRuns returns the runs whose newest version is running or waiting.
func (s *CHStore) LoadRuns(ctx context.Context) ([]Run, error) {
	return s.runs(ctx, "", "HAVING last_status IN ('running', 'waiting_approval')")
}

// GetRun returns the newest version of one run or ErrNotFound.
func (s *CHStore) GetRun(ctx context.Context, runID string) (Run, error) {
	rs, err := s.runs(ctx, "WHERE run_id = ?", "", runID)
	if err != nil {
		return Run{}, err
	}
	if len(rs) == 0 {
		return Run{}, ErrNotFound
	}
	return rs[0], nil
}

// RunsOf returns the newest version of each run of an incident.
func (s *CHStore) RunsOf(ctx context.Context, incidentID string) ([]Run, error) {
	return s.runs(ctx, "WHERE incident_id = ?", "", incidentID)
}
