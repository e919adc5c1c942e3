// Package rollup seals closed minutes and hours of the calls_per_minute
// rollup into plain counts (schema 0010–0015: calls_sealed per minute,
// calls_sealed_totals per minute by outcome only, calls_sealed_hourly per
// whole hour), so dashboards sum UInt64s instead of merging uniqExact
// states of call ids (schema 0017: one call's observations share a call_id;
// rows from before 0016 count by event_id) over every event of their range.
//
// The protocol, all in ClickHouse:
//   - calls_dirty_mv (0012) marks a minute dirty (the insert time, ns) in
//     calls_seal_state whenever events of that minute are inserted: new,
//     late or replayed.
//   - The Sealer picks minutes older than Grace whose newest seal is not
//     newer than their newest dirty mark, computes their counts with
//     uniqExactMerge (exact, so a replay cannot inflate them), writes them to
//     calls_sealed at a new version, and only then records that version in
//     calls_seal_state.
//   - Readers (internal/store, the Grafana plugin) sum calls_sealed rows of
//     the recorded version for minutes that are clean (sealed > dirty) and
//     merge states from calls_per_minute for every other minute. A late event
//     makes its minute dirty at once, so counts are exact at every moment;
//     sealing only decides how fast they are read.
//
// Sealed counts are always recomputed from the exact states, never
// incremented, so it does not matter whether the analyzer committed its
// Kafka offsets past a minute: a replay after sealing dirties the minute and
// the re-seal finds the same distinct count.
package rollup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config tunes the sealer (YAML section `rollup` of the analyzer).
type Config struct {
	// Disabled turns sealing off; readers then merge states for every
	// minute (exact, slower). Default false.
	Disabled bool `yaml:"disabled"`
	// Interval between seal passes. Default 30s.
	Interval time.Duration `yaml:"interval"`
	// Grace is how long a minute stays open after it ends: minutes that end
	// less than Grace ago are not sealed (late events there are normal).
	// Default 2m.
	Grace time.Duration `yaml:"grace"`
	// Margin is how far before the seal pass its version lies: an insert
	// that started within Margin before the pass dirties the minute again,
	// so an insert still in flight while the pass reads cannot be missed.
	// Must be shorter than Grace. Default 30s.
	Margin time.Duration `yaml:"margin"`
	// ChunkMinutes is how many minutes one insert seals. Default 60.
	ChunkMinutes int `yaml:"chunk_minutes"`
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = 30 * time.Second
	}
	if c.Grace == 0 {
		c.Grace = 2 * time.Minute
	}
	if c.Margin == 0 {
		c.Margin = 30 * time.Second
	}
	if c.ChunkMinutes == 0 {
		c.ChunkMinutes = 60
	}
	return c
}

// Validate reports every problem at once (call after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("rollup.interval: %s is below 1s", c.Interval))
	}
	if c.Margin < time.Second {
		errs = append(errs, fmt.Errorf("rollup.margin: %s is below 1s", c.Margin))
	}
	if c.Grace <= c.Margin {
		errs = append(errs, fmt.Errorf("rollup.grace: %s must be longer than rollup.margin (%s)", c.Grace, c.Margin))
	}
	if c.ChunkMinutes < 1 || c.ChunkMinutes > 1440 {
		errs = append(errs, fmt.Errorf("rollup.chunk_minutes: %d is not within 1..1440", c.ChunkMinutes))
	}
	return errors.Join(errs...)
}

// Sealer seals closed minutes of one database.
type Sealer struct {
	conn driver.Conn
	db   string
	cfg  Config
	log  *slog.Logger
}

// New returns a sealer for database db (cfg gets its defaults).
func New(conn driver.Conn, db string, cfg Config, log *slog.Logger) *Sealer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sealer{conn: conn, db: db, cfg: cfg.WithDefaults(), log: log}
}

func (s *Sealer) t(name string) string { return "`" + s.db + "`.`" + name + "`" }

// Result says what one pass did.
type Result struct {
	Minutes int // minutes sealed (first time or again)
	Hours   int // whole hours sealed (first time or again)
	Rows    int // calls_sealed and calls_sealed_hourly rows written
}

// grain is one sealing granularity.
type grain struct {
	table  string // calls_sealed or calls_sealed_hourly
	totals string // calls_sealed_totals for the minute grain, or ""
	col    string // its bucket column
	bucket string // bucket of calls_per_minute.minute
	mark   string // calls_seal_state column that records the version
	chunk  int    // buckets per insert
	width  uint32 // seconds
}

// SealOnce seals every minute that ended more than Grace ago (by the
// server's clock) and is not clean, then every such whole hour. It returns
// what it sealed.
func (s *Sealer) SealOnce(ctx context.Context) (Result, error) {
	var now time.Time
	if err := s.conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return Result{}, fmt.Errorf("cannot read clickhouse time: %w", err)
	}
	// Version: the pass's start minus Margin, in ns, plus random low bits so
	// two sealers never write the same version. It lies in a second before
	// every dirty mark written since (marks are the end of their second).
	base := now.Add(-s.cfg.Margin).Truncate(time.Second)
	version := uint64(base.UnixNano()) + rand.Uint64N(uint64(time.Second)-1)
	// The newest closed minute: m is closed when m+1m <= now-grace.
	cutoff := uint32(now.Add(-s.cfg.Grace).Add(-time.Minute).Unix())
	var res Result
	minutes := grain{table: "calls_sealed", totals: "calls_sealed_totals", col: "minute", bucket: "minute", mark: "sealed", chunk: s.cfg.ChunkMinutes, width: 60}
	n, rows, err := s.seal(ctx, minutes, cutoff, version)
	res.Minutes, res.Rows = n, rows
	if err != nil {
		return res, err
	}
	hours := grain{table: "calls_sealed_hourly", col: "hour", bucket: "toStartOfHour(minute)", mark: "hour_sealed", chunk: max(1, s.cfg.ChunkMinutes/60), width: 3600}
	n, rows, err = s.seal(ctx, hours, cutoff, version)
	res.Hours, res.Rows = n, res.Rows+rows
	if err != nil {
		return res, err
	}
	if res.Minutes+res.Hours > 0 {
		s.log.Debug("sealed calls", "minutes", res.Minutes, "hours", res.Hours, "rows", res.Rows)
	}
	return res, nil
}

// seal seals the buckets of g that are closed by cutoff (their last minute
// is at most cutoff) and not clean, tenant by tenant, chunk by chunk.
func (s *Sealer) seal(ctx context.Context, g grain, cutoff uint32, version uint64) (int, int, error) {
	// Candidates: not clean, and not dirtied so recently that this version
	// could not clean them.
	rows, err := s.conn.Query(ctx, "SELECT tenant, toUInt32(b) FROM (SELECT tenant, "+g.bucket+" AS b, maxMerge("+g.mark+") AS s, maxMerge(dirty) AS d FROM "+
		s.t("calls_seal_state")+" WHERE minute <= toDateTime(?) GROUP BY tenant, b) WHERE toUInt32(b) + ? <= ? AND s <= d AND d < ? ORDER BY tenant, b",
		cutoff, g.width-60, cutoff, version)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot list unsealed %s: %w", g.table, err)
	}
	var tenants []string
	buckets := map[string][]uint32{}
	for rows.Next() {
		var tenant string
		var b uint32
		if err := rows.Scan(&tenant, &b); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("cannot scan unsealed %s: %w", g.table, err)
		}
		if _, ok := buckets[tenant]; !ok {
			tenants = append(tenants, tenant)
		}
		buckets[tenant] = append(buckets[tenant], b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("cannot list unsealed %s: %w", g.table, err)
	}
	sealed, written := 0, 0
	for _, tenant := range tenants {
		bs := buckets[tenant]
		for len(bs) > 0 {
			n := min(len(bs), g.chunk)
			r, err := s.sealChunk(ctx, g, tenant, bs[:n], version)
			written += r
			if err != nil {
				return sealed, written, err
			}
			sealed += n
			bs = bs[n:]
		}
	}
	return sealed, written, nil
}

// sealChunk seals buckets (ascending) of one tenant at version: the counts
// in one insert, then the version record.
func (s *Sealer) sealChunk(ctx context.Context, g grain, tenant string, buckets []uint32, version uint64) (int, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+g.bucket+" AS b, agent_id, server_name, tool_name, method, toString(outcome), uniqExactMerge(calls_state) FROM "+
		s.t("calls_per_minute")+" WHERE tenant = ? AND minute >= toDateTime(?) AND minute < toDateTime(?) AND has(?, toUInt32(b))"+
		" GROUP BY b, agent_id, server_name, tool_name, method, outcome",
		tenant, buckets[0], buckets[len(buckets)-1]+g.width, buckets)
	if err != nil {
		return 0, fmt.Errorf("cannot merge calls to seal: %w", err)
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t(g.table)+
		" ("+g.col+", tenant, agent_id, server_name, tool_name, method, outcome, calls, version)")
	if err != nil {
		rows.Close()
		return 0, fmt.Errorf("cannot prepare sealed calls insert: %w", err)
	}
	type total struct {
		b               time.Time
		method, outcome string
	}
	totals := map[total]uint64{} // minute grain: also per (minute, method, outcome)
	n := 0
	for rows.Next() {
		var b time.Time
		var agent, server, tool, method, outcome string
		var calls uint64
		if err := rows.Scan(&b, &agent, &server, &tool, &method, &outcome, &calls); err != nil {
			rows.Close()
			_ = batch.Abort()
			return 0, fmt.Errorf("cannot scan calls to seal: %w", err)
		}
		if err := batch.Append(b, tenant, agent, server, tool, method, outcome, calls, version); err != nil {
			rows.Close()
			_ = batch.Abort()
			return 0, fmt.Errorf("cannot append sealed calls: %w", err)
		}
		if g.totals != "" {
			totals[total{b, method, outcome}] += calls
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		_ = batch.Abort()
		return 0, fmt.Errorf("cannot merge calls to seal: %w", err)
	}
	if n > 0 {
		// One block: each bucket's rows land whole or not at all.
		if err := batch.Send(); err != nil {
			return 0, fmt.Errorf("cannot insert sealed calls: %w", err)
		}
	} else {
		_ = batch.Abort()
	}
	if len(totals) > 0 {
		tb, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t(g.totals)+" (minute, tenant, method, outcome, calls, version)")
		if err != nil {
			return n, fmt.Errorf("cannot prepare sealed totals insert: %w", err)
		}
		for k, calls := range totals {
			if err := tb.Append(k.b, tenant, k.method, k.outcome, calls, version); err != nil {
				_ = tb.Abort()
				return n, fmt.Errorf("cannot append sealed totals: %w", err)
			}
		}
		if err := tb.Send(); err != nil {
			return n, fmt.Errorf("cannot insert sealed totals: %w", err)
		}
	}
	// Only now is the version recorded: readers never see part of a seal.
	sealed, hour := "toUInt64(0)", "toUInt64(0)"
	if g.mark == "sealed" {
		sealed = "toUInt64(?)"
	} else {
		hour = "toUInt64(?)"
	}
	if err := s.conn.Exec(ctx, "INSERT INTO "+s.t("calls_seal_state")+" (tenant, minute, sealed, dirty, hour_sealed)"+
		" SELECT tenant, minute, maxState("+sealed+"), maxState(toUInt64(0)), maxState("+hour+") FROM (SELECT ? AS tenant, toDateTime(arrayJoin(?)) AS minute) GROUP BY tenant, minute",
		version, tenant, buckets); err != nil {
		return n, fmt.Errorf("cannot record sealed buckets: %w", err)
	}
	return n, nil
}

// SealAll repeats SealOnce until a pass seals nothing (a backlog larger
// than one pass, e.g. after an upgrade or in the benchmark).
func (s *Sealer) SealAll(ctx context.Context) (Result, error) {
	var total Result
	for {
		r, err := s.SealOnce(ctx)
		total.Minutes += r.Minutes
		total.Hours += r.Hours
		total.Rows += r.Rows
		if err != nil || r.Minutes+r.Hours == 0 {
			return total, err
		}
	}
}

// Run seals every Interval until ctx ends. Errors are logged and retried
// at the next tick (readers stay exact meanwhile).
func (s *Sealer) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		if _, err := s.SealOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot seal closed minutes; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
