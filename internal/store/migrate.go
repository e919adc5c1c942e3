package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/mcpwatch/mcpwatch/schema"
)

// Migration is one numbered SQL file of schema/.
type Migration struct {
	Version  uint32
	Name     string // file name, e.g. 0002_events.sql
	Checksum string // sha256 of the file as shipped (before {db} substitution)
	SQL      string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) { return loadMigrations(schema.Files) }

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("cannot list migrations: %w", err)
	}
	var ms []Migration
	seen := map[uint32]string{}
	for _, n := range names {
		prefix, _, ok := strings.Cut(n, "_")
		v, err := strconv.ParseUint(prefix, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("cannot load migration %s: name must be NNNN_name.sql", n)
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("cannot load migrations: %s and %s share version %d", other, n, v)
		}
		seen[uint32(v)] = n
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("cannot read migration %s: %w", n, err)
		}
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: uint32(v), Name: n, Checksum: hex.EncodeToString(sum[:]), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Statements splits a migration into its statements (separated by a `;` at
// the end of a line) with {db} replaced by the quoted database name: what
// the single-server profile runs.
func (m Migration) Statements(db string) []string {
	return splitStatements(strings.ReplaceAll(m.SQL, "{db}", "`"+db+"`"))
}

// splitStatements splits SQL at each `;` that ends a line (not in a `--`
// comment line); comment-only pieces are dropped, comments kept otherwise.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" && !onlyComments(s) {
			out = append(out, s)
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(sql, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasSuffix(t, ";") && !strings.HasPrefix(t, "--") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t\r\n"), ";"))
			cur.WriteString("\n")
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return out
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			return false
		}
	}
	return true
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Applied []string // names applied by this call, in order
	Skipped []string // names already applied (same checksum)
}

// ddlContext carries the setting 18.16 needs to create LowCardinality
// columns (int-valued, as clickhouse-go requires on 18.16). It is sent only
// to servers older than 19.0: current releases reject it as unknown
// (checked on 26.9), and there LowCardinality needs no setting.
func (s *Store) ddlContext(ctx context.Context) (context.Context, error) {
	v, err := s.conn.ServerVersion()
	if err != nil {
		return ctx, fmt.Errorf("cannot read the clickhouse server version: %w", err)
	}
	if v.Version.Major >= 19 {
		return ctx, nil
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"allow_experimental_low_cardinality_type": 1,
	})), nil
}

// Migrate creates the database and applies every embedded migration not yet
// recorded in schema_migrations, in version order. It is idempotent. It
// fails, before applying anything, when a recorded migration's checksum
// differs from the shipped file: edit schema by adding a migration. With
// the cluster profile (Config.Cluster) every migration runs transformed
// (ClusterStatements), ON CLUSTER; a migration the transformer cannot
// handle fails the run before anything is applied.
func (s *Store) Migrate(ctx context.Context) (MigrateResult, error) {
	ms, err := Migrations()
	if err != nil {
		return MigrateResult{}, err
	}
	return s.migrate(ctx, ms)
}

func (s *Store) migrate(ctx context.Context, ms []Migration) (MigrateResult, error) {
	var res MigrateResult
	stmts := make([][]string, len(ms))
	if s.cluster.Enabled() {
		var err error
		if stmts, err = ClusterStatements(ms, s.db, s.cluster); err != nil {
			return res, err
		}
	} else {
		for i, m := range ms {
			stmts[i] = m.Statements(s.db)
		}
	}
	ctx, err := s.ddlContext(ctx)
	if err != nil {
		return res, err
	}
	if err := s.checkProfile(ctx); err != nil {
		return res, err
	}
	onCluster := ""
	if s.cluster.Enabled() {
		onCluster = " ON CLUSTER `" + s.cluster.Name + "`"
	}
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+s.db+"`"+onCluster); err != nil {
		return res, fmt.Errorf("cannot create database %s: %w", s.db, err)
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return res, err
	}
	for _, m := range ms {
		if sum, ok := applied[m.Version]; ok && sum != m.Checksum {
			return res, fmt.Errorf("cannot migrate: migration %s was applied with checksum %s but the shipped file has %s; never edit an applied migration, add a new one", m.Name, short(sum), short(m.Checksum))
		}
	}
	for i, m := range ms {
		if _, ok := applied[m.Version]; ok {
			res.Skipped = append(res.Skipped, m.Name)
			continue
		}
		for _, stmt := range stmts[i] {
			if done, err := s.columnAdded(ctx, stmt); err != nil {
				return res, fmt.Errorf("cannot apply migration %s: %w", m.Name, err)
			} else if done {
				continue
			}
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return res, fmt.Errorf("cannot apply migration %s: %w", m.Name, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return res, err
		}
		res.Applied = append(res.Applied, m.Name)
	}
	return res, nil
}

// checkProfile refuses a database created by the other profile (moving one
// server's data onto a cluster is a data migration, docs/deploy.md), and,
// with the cluster profile, a user whose distributed_product_mode is not
// 'global': the readers' `(tenant, minute) IN (SELECT … calls_seal_state)`
// subqueries must see every shard's seal records, not the local shard's.
func (s *Store) checkProfile(ctx context.Context) error {
	var engines []string
	rows, err := s.conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", s.db, migrationsTable)
	if err != nil {
		return fmt.Errorf("cannot look up schema_migrations: %w", err)
	}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			rows.Close()
			return fmt.Errorf("cannot look up schema_migrations: %w", err)
		}
		engines = append(engines, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot look up schema_migrations: %w", err)
	}
	for _, e := range engines {
		clustered := e == "Distributed" || strings.HasPrefix(e, "Replicated")
		if clustered && !s.cluster.Enabled() {
			return fmt.Errorf("cannot migrate database %s with the single-server profile: it was created by the cluster profile (schema_migrations is %s); set clickhouse.cluster", s.db, e)
		}
		if !clustered && s.cluster.Enabled() {
			return fmt.Errorf("cannot migrate database %s with the cluster profile: it was created by the single-server profile (schema_migrations is %s); moving data onto a cluster is a data migration, see docs/deploy.md", s.db, e)
		}
	}
	if !s.cluster.Enabled() {
		return nil
	}
	var mode string
	if err := s.conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'distributed_product_mode'").Scan(&mode); err != nil {
		return fmt.Errorf("cannot read distributed_product_mode: %w", err)
	}
	if mode != "global" {
		return fmt.Errorf("cannot use the cluster profile: distributed_product_mode is %q for this user; set it to 'global' in the users' profile on every server (docs/deploy.md), or queries that read seal state in a subquery fail or count a shard's calls twice", mode)
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// appliedMigrations returns version → checksum of what schema_migrations
// records; empty when the table does not exist yet.
func (s *Store) appliedMigrations(ctx context.Context) (map[uint32]string, error) {
	out := map[uint32]string{}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", s.db).Scan(&n); err != nil {
		return nil, fmt.Errorf("cannot look up schema_migrations: %w", err)
	}
	if n == 0 {
		return out, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT version, argMax(checksum, applied_at) FROM "+s.table("schema_migrations")+" GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
		}
		out[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	return out, nil
}

// AppliedMigrations lists the recorded migration names in version order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT version, any(name) FROM "+s.table("schema_migrations")+" GROUP BY version ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v uint32
		var n string
		if err := rows.Scan(&v, &n); err != nil {
			return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// recordMigration inserts one schema_migrations row. It uses a batch: an
// Exec of INSERT … VALUES with bound values hangs against 18.16.
func (s *Store) recordMigration(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("schema_migrations")+" (version, name, checksum, applied_at)")
	if err != nil {
		return fmt.Errorf("cannot record migration %s: %w", m.Name, err)
	}
	defer b.Abort() //nolint:errcheck
	if err := b.Append(m.Version, m.Name, m.Checksum, time.Now().UTC()); err != nil {
		return fmt.Errorf("cannot record migration %s: %w", m.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot record migration %s: %w", m.Name, err)
	}
	return nil
}

// addColumnRE matches a migration's ALTER TABLE `db`.table [ON CLUSTER
// `c`] ADD COLUMN name (as written, or as the cluster profile transforms it).
var addColumnRE = regexp.MustCompile("(?is)^ALTER\\s+TABLE\\s+`[^`]+`\\.`?(\\w+)`?(?:\\s+ON\\s+CLUSTER\\s+`[^`]*`)?\\s+ADD\\s+COLUMN\\s+(\\w+)\\s")

// columnAdded reports whether stmt adds a column that already exists.
// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; this check keeps such
// a migration idempotent (re-run after a failure between the ALTER and
// the migration's record) on every version.
func (s *Store) columnAdded(ctx context.Context, stmt string) (bool, error) {
	for strings.HasPrefix(stmt, "--") { // the file's leading comment
		_, stmt, _ = strings.Cut(stmt, "\n")
		stmt = strings.TrimSpace(stmt)
	}
	m := addColumnRE.FindStringSubmatch(stmt)
	if m == nil {
		return false, nil
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", s.db, m[1], m[2]).Scan(&n); err != nil {
		return false, fmt.Errorf("cannot check column %s.%s: %w", m[1], m[2], err)
	}
	return n > 0, nil
}
