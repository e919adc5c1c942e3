package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// partitionUnit says how each table is partitioned (schema/): by day
// (toYYYYMMDD, ids like 20240101) or by month (toYYYYMM, ids like 202401).
var partitionUnit = map[string]string{
	"events":              "day",
	"findings":            "day",
	"actions":             "day",
	"calls_per_minute":    "day",
	"calls_sealed":        "day",
	"calls_seal_state":    "day",
	"calls_sealed_hourly": "day",
	"calls_sealed_totals": "day",
	"incidents":           "month",
	"redaction_sightings": "day",
	"blast_index":         "day",
}

// EventIndexTables are the tables materialized views derive from events,
// row by row (schema 0026–0028); retention drops their days with the
// events', so that they never point at events that are gone.
func EventIndexTables() []string {
	return []string{"redaction_sightings", "blast_index"}
}

// SealedCallTables are the tables internal/rollup derives from
// calls_per_minute (schema 0010–0015); retention drops their days with
// calls_per_minute's.
func SealedCallTables() []string {
	return []string{"calls_sealed", "calls_seal_state", "calls_sealed_hourly", "calls_sealed_totals"}
}

// RetentionTables lists the tables DropPartitionsOlderThan accepts.
func RetentionTables() []string {
	return append(append([]string{"events", "findings", "incidents", "actions", "calls_per_minute"}, SealedCallTables()...), EventIndexTables()...)
}

// DropPartitionsOlderThan drops every partition of table whose whole period
// (day, or month for incidents) ends more than days days before now, and
// returns the dropped partition ids. days ≤ 0 keeps everything. The partition
// is named by its number (`DROP PARTITION 20240101`), the form 18.16 needs.
// With the cluster profile it drops from table's local table on every
// server (ON CLUSTER), listing partitions with cluster(…, system.parts).
func (s *Store) DropPartitionsOlderThan(ctx context.Context, table string, days int, now time.Time) ([]string, error) {
	unit, ok := partitionUnit[table]
	if !ok {
		return nil, fmt.Errorf("cannot apply retention to %q: not a partitioned mcpwatch table", table)
	}
	if days <= 0 {
		return nil, nil
	}
	cutoff := now.UTC().AddDate(0, 0, -days)
	// With the cluster profile the rows are in the local tables of every
	// server: list their partitions on all of them, drop ON CLUSTER.
	local, from, onCluster := s.clusterLocalTable(table), "system.parts", ""
	if s.cluster.Enabled() {
		from = "cluster('" + s.cluster.Name + "', system.parts)"
		onCluster = " ON CLUSTER `" + s.cluster.Name + "`"
	}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT partition FROM "+from+" WHERE database = ? AND table = ? AND active", s.db, local)
	if err != nil {
		return nil, fmt.Errorf("cannot list partitions of %s: %w", table, err)
	}
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot list partitions of %s: %w", table, err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list partitions of %s: %w", table, err)
	}
	var dropped []string
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			continue // not one of ours
		}
		var end time.Time // exclusive end of the partition's period
		switch unit {
		case "day":
			if n < 19700101 || n > 99991231 {
				continue
			}
			end = time.Date(int(n/10000), time.Month(n/100%100), int(n%100), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
		case "month":
			if n < 197001 || n > 999912 {
				continue
			}
			end = time.Date(int(n/100), time.Month(n%100), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
		}
		if end.After(cutoff) {
			continue
		}
		// The id is a parsed number re-formatted, never raw input.
		id := strconv.FormatUint(n, 10)
		if err := s.conn.Exec(ctx, "ALTER TABLE "+s.table(local)+onCluster+" DROP PARTITION "+id); err != nil {
			return dropped, fmt.Errorf("cannot drop partition %s of %s: %w", id, table, err)
		}
		dropped = append(dropped, id)
	}
	return dropped, nil
}
