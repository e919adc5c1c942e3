package detect

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseBaselines stores new_term baselines in the detection_baselines
// table (schema/0009). It uses a clickhouse-go native connection; the
// analyzer passes the store's pool.
type ClickHouseBaselines struct {
	conn  driver.Conn
	table string
	// MaxAge skips baselines whose last_seen is older than now-MaxAge at
	// load (wall clock). Default 0: load all (the rules' history applies anyway).
	MaxAge time.Duration
	now    func() time.Time
}

// NewClickHouseBaselines returns a BaselineStore on database db.
func NewClickHouseBaselines(conn driver.Conn, db string) *ClickHouseBaselines {
	return &ClickHouseBaselines{conn: conn, table: "`" + db + "`.`detection_baselines`", now: time.Now}
}

// LoadBaselines reads the baselines of the given rules (aggregated per key).
func (c *ClickHouseBaselines) LoadBaselines(ctx context.Context, ruleIDs []string) ([]Baseline, error) {
	since := time.Unix(0, 0).UTC()
	if c.MaxAge > 0 {
		since = c.now().Add(-c.MaxAge).UTC().Truncate(time.Second)
	}
	rows, err := c.conn.Query(ctx, "SELECT rule_id, tenant, group_key, term, min(first_seen), max(last_seen) FROM "+c.table+
		" WHERE has(?, rule_id) AND last_seen >= ? GROUP BY rule_id, tenant, group_key, term", ruleIDs, since)
	if err != nil {
		return nil, fmt.Errorf("cannot query detection baselines: %w", err)
	}
	defer rows.Close()
	var out []Baseline
	for rows.Next() {
		var b Baseline
		if err := rows.Scan(&b.RuleID, &b.Tenant, &b.GroupKey, &b.Term, &b.FirstSeen, &b.LastSeen); err != nil {
			return nil, fmt.Errorf("cannot read detection baseline: %w", err)
		}
		b.FirstSeen, b.LastSeen = b.FirstSeen.UTC(), b.LastSeen.UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read detection baselines: %w", err)
	}
	return out, nil
}

// SaveBaselines appends rows (one batch).
func (c *ClickHouseBaselines) SaveBaselines(ctx context.Context, rows []Baseline) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	ruleID, tenant, group, term := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	first, last := make([]time.Time, n), make([]time.Time, n)
	for i, b := range rows {
		ruleID[i], tenant[i], group[i], term[i] = b.RuleID, b.Tenant, b.GroupKey, b.Term
		first[i], last[i] = b.FirstSeen.UTC(), b.LastSeen.UTC()
	}
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.table+" (rule_id, tenant, group_key, term, first_seen, last_seen)")
	if err != nil {
		return fmt.Errorf("cannot prepare detection baselines insert: %w", err)
	}
	defer batch.Abort()
	for i, col := range []any{ruleID, tenant, group, term, first, last} {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("cannot append detection baselines column %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot insert detection baselines: %w", err)
	}
	return nil
}
