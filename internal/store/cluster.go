package store

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The cluster profile (Config.Cluster) runs the same numbered migrations of
// schema/, transformed statement by statement:
//
//	CREATE TABLE {db}.t (…) ENGINE = XMergeTree(args) …
//	  → CREATE TABLE {db}.t_local ON CLUSTER c (…)
//	      ENGINE = ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/t_local', '{replica}', args) …
//	    CREATE TABLE {db}.t ON CLUSTER c AS {db}.t_local
//	      ENGINE = Distributed('c', '<db>', 't_local', <sharding key of t>)
//	CREATE MATERIALIZED VIEW {db}.mv TO {db}.t AS SELECT … FROM {db}.s …
//	  → CREATE MATERIALIZED VIEW {db}.mv ON CLUSTER c TO {db}.t_local AS SELECT … FROM {db}.s_local …
//	ALTER TABLE {db}.t ADD|DROP|MODIFY|RENAME|COMMENT COLUMN …
//	  → the same ON CLUSTER c on t_local, then on t
//	ALTER TABLE {db}.t <anything else> → ON CLUSTER c on t_local only
//	DROP TABLE {db}.t → ON CLUSTER c on t, then t_local
//	CREATE VIEW {db}.v AS … → ON CLUSTER c (reads the Distributed tables)
//	INSERT INTO {db}.t (…) SELECT … → unchanged, run once (Distributed tables)
//
// The code keeps querying the names it always queried: those are the
// Distributed tables. A materialized view fires on the local table of the
// shard that received the insert and writes to that shard's local target,
// so rollups live next to the events they count. schema_migrations is one
// table replicated to every server (a ZooKeeper path without {shard}), so a
// migration is recorded once per cluster and every server can read the
// record; without replication it is sharded like any other table and read
// through its Distributed table. Any other statement, engine or shape fails
// the whole migration run before anything is applied, naming the migration.
//
// The database name is written into the ZooKeeper path literally rather
// than as the {database} macro, which ClickHouse 18.16 does not know; the
// path is the same.

// clusterShardingKeys is the sharding key of each table's Distributed table:
// which rows must sit on the same shard. Rows that a ReplacingMergeTree or
// AggregatingMergeTree collapses must always share a shard (the sort key, or
// a prefix of it that the key contains, guarantees that). A table not listed
// here takes the key declared in its migration with a comment line
// `-- cluster sharding key: <expr>`, else cityHash64 of its whole ORDER BY.
var clusterShardingKeys = map[string]string{
	// One agent's events on one shard, as on one Kafka partition of
	// mcpwatch.events.v1: replays (same tenant, agent, ts, event_id) collapse,
	// one agent's timeline and sessions are read from one shard, and the
	// materialized views write the agent's rollup rows on that shard too.
	"events": "cityHash64(tenant, agent_id)",
	// Written only by calls_per_minute_mv on the events' shard: same key.
	"calls_per_minute": "cityHash64(tenant, agent_id)",
	// Incident key (tenant, rule, group key) = key of mcpwatch.findings.v1:
	// a finding, its replays and its re-insert with the incident id meet on
	// one shard, with the incident they belong to.
	"findings": "cityHash64(tenant, rule_id, group_key)",
	// Every version of an incident has the same incident key.
	"incidents": "cityHash64(tenant, rule_id, group_key)",
	// A playbook run with the incident it belongs to (its key).
	"playbook_runs": "cityHash64(tenant, rule_id, group_key)",
	// One incident's audit trail together.
	"actions": "cityHash64(tenant, incident_id)",
	// Every definition of one tool together (its history is one read).
	"tool_definitions": "cityHash64(tenant, server_name, tool_name)",
	// new_term state of the detect role, keyed like mcpwatch.detect.v1.
	"detection_baselines": "cityHash64(tenant, rule_id, group_key)",
	// The sealer writes one tenant's minutes (or hours) in one insert: with
	// the tenant as key the whole insert is one block on one shard, so a
	// seal lands whole or not at all (insert_distributed_sync=1).
	"calls_sealed":        "cityHash64(tenant)",
	"calls_sealed_hourly": "cityHash64(tenant)",
	"calls_sealed_totals": "cityHash64(tenant)",
	// Dirty marks come from calls_dirty_mv on the events' shards, seal
	// records through the Distributed table; readers take maxMerge over all
	// shards, so only the sealer's rows use this key.
	"calls_seal_state": "cityHash64(tenant)",
	// Written only by redaction_sightings_mv on the events' shard: same key
	// (a replayed event's sightings collapse with the first ones).
	"redaction_sightings": "cityHash64(tenant, agent_id)",
	// Per-agent state of the ingest role (enrich), keyed like the events.
	"enrich_servers":  "cityHash64(tenant, agent_id)",
	"enrich_sessions": "cityHash64(tenant, agent_id)",
}

// migrationsTable is the table the runner records migrations in.
const migrationsTable = "schema_migrations"

// localSuffix names the local table behind a Distributed table.
const localSuffix = "_local"

type clusterKind int

const (
	kindSharded clusterKind = iota // t_local on every server + Distributed t
	kindShared                     // one table replicated to every server (schema_migrations)
	kindMV                         // materialized view on every server
	kindView                       // plain view on every server
)

// clusterTransformer carries what earlier migrations created, so that later
// ones (ALTER, DROP, views over earlier tables) are transformed to match.
type clusterTransformer struct {
	cl     ClusterConfig
	tables map[string]clusterKind
}

func newClusterTransformer(cl ClusterConfig) *clusterTransformer {
	return &clusterTransformer{cl: cl, tables: map[string]clusterKind{}}
}

// ClusterStatements returns, for each migration of ms (in order), the
// statements the cluster profile cl runs for it on database db. It fails on
// the first statement it cannot transform, before anything is applied.
func ClusterStatements(ms []Migration, db string, cl ClusterConfig) ([][]string, error) {
	if !cl.Enabled() {
		return nil, fmt.Errorf("cannot build cluster statements: no cluster name")
	}
	if !identRE.MatchString(db) || !identRE.MatchString(cl.Name) {
		return nil, fmt.Errorf("cannot build cluster statements: database %q and cluster %q must be identifiers", db, cl.Name)
	}
	tr := newClusterTransformer(cl)
	out := make([][]string, len(ms))
	for i, m := range ms {
		stmts, err := tr.migration(m)
		if err != nil {
			return nil, err
		}
		for j, s := range stmts {
			s = strings.ReplaceAll(s, "{db_name}", db)
			stmts[j] = strings.ReplaceAll(s, "{db}", "`"+db+"`")
		}
		out[i] = stmts
	}
	return out, nil
}

// migration transforms one migration's statements (still with {db}).
func (t *clusterTransformer) migration(m Migration) ([]string, error) {
	var out []string
	for _, raw := range splitStatements(m.SQL) {
		stmts, err := t.statement(raw)
		if err != nil {
			return nil, fmt.Errorf("cannot transform migration %s for the cluster profile: %w", m.Name, err)
		}
		out = append(out, stmts...)
	}
	return out, nil
}

var (
	reCreateTable = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?\{db\}\.` + "`?" + `(\w+)` + "`?" + `\s*(.*)$`)
	reCreateMV    = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?\{db\}\.` + "`?" + `(\w+)` + "`?" + `\s+(.*)$`)
	reMVTo        = regexp.MustCompile(`(?is)^TO\s+\{db\}\.` + "`?" + `(\w+)` + "`?" + `\s+(AS\s+SELECT\s.*)$`)
	reCreateView  = regexp.MustCompile(`(?is)^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?\{db\}\.` + "`?" + `(\w+)` + "`?" + `\s+(AS\s+SELECT\s.*)$`)
	reInsert      = regexp.MustCompile(`(?is)^INSERT\s+INTO\s+\{db\}\.` + "`?" + `(\w+)` + "`?" + `\s*\(.*\)\s*SELECT\s.*$`)
	reAlter       = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+\{db\}\.` + "`?" + `(\w+)` + "`?" + `\s+(.*)$`)
	reDrop        = regexp.MustCompile(`(?is)^DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?\{db\}\.` + "`?" + `(\w+)` + "`?" + `$`)
	reEngine      = regexp.MustCompile(`(?is)^ENGINE\s*=\s*(\w+)\s*`)
	reTableRef    = regexp.MustCompile(`\{db\}\.` + "`?" + `(\w+)` + "`?")
	reOnCluster   = regexp.MustCompile(`(?i)\bON\s+CLUSTER\b`)
	reColumnOp    = regexp.MustCompile(`(?is)^(ADD|DROP|MODIFY|COMMENT|RENAME)\s+COLUMN\s`)
	reOrderBy     = regexp.MustCompile(`(?is)\bORDER\s+BY\s+(.*?)\s*(?:\bPRIMARY\s+KEY\b|\bSAMPLE\s+BY\b|\bSETTINGS\b|\bTTL\b|$)`)
	reShardingKey = regexp.MustCompile(`(?im)^\s*--\s*cluster sharding key:\s*(.+?)\s*$`)
	mergeTrees    = regexp.MustCompile(`^(|Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)MergeTree$`)
)

func (t *clusterTransformer) onCluster() string { return " ON CLUSTER `" + t.cl.Name + "`" }

// statement transforms one statement (comments included, {db} not yet
// substituted) into the statements the cluster profile runs.
func (t *clusterTransformer) statement(raw string) ([]string, error) {
	declaredKey := ""
	if m := reShardingKey.FindStringSubmatch(raw); m != nil {
		declaredKey = m[1]
	}
	s := strings.TrimSpace(stripComments(raw))
	if reOnCluster.MatchString(s) {
		return nil, fmt.Errorf("statement %q already says ON CLUSTER: migrations are written for one server", head(s))
	}
	switch {
	case reCreateTable.MatchString(s):
		return t.createTable(s, declaredKey)
	case reCreateMV.MatchString(s):
		return t.createMV(s)
	case reCreateView.MatchString(s):
		m := reCreateView.FindStringSubmatch(s)
		t.tables[m[2]] = kindView
		return []string{"CREATE VIEW " + m[1] + "{db}." + m[2] + t.onCluster() + " " + m[3]}, nil
	case reInsert.MatchString(s):
		for _, r := range reTableRef.FindAllStringSubmatch(s, -1) {
			if k, ok := t.tables[r[1]]; !ok || k == kindMV {
				return nil, fmt.Errorf("INSERT … SELECT reads or writes %s, which is not a table an earlier statement created", r[1])
			}
		}
		// Through the Distributed tables, once for the whole cluster.
		return []string{s}, nil
	case reAlter.MatchString(s):
		return t.alter(s)
	case reDrop.MatchString(s):
		m := reDrop.FindStringSubmatch(s)
		name := m[3]
		k, ok := t.tables[name]
		if !ok {
			return nil, fmt.Errorf("DROP of %s, which no earlier statement created", name)
		}
		delete(t.tables, name)
		drop := "DROP " + strings.ToUpper(m[1]) + " " + m[2]
		if k == kindSharded {
			return []string{drop + "{db}." + name + t.onCluster(), drop + "{db}." + name + localSuffix + t.onCluster()}, nil
		}
		return []string{drop + "{db}." + name + t.onCluster()}, nil
	}
	return nil, fmt.Errorf("statement %q is not one of CREATE TABLE (MergeTree family), CREATE MATERIALIZED VIEW … TO, CREATE VIEW, INSERT … SELECT, ALTER TABLE, DROP TABLE: write it as one of those or teach internal/store/cluster.go", head(s))
}

func (t *clusterTransformer) createTable(s, declaredKey string) ([]string, error) {
	m := reCreateTable.FindStringSubmatch(s)
	ifNotExists, name, rest := m[1], m[2], m[3]
	if strings.HasSuffix(name, localSuffix) {
		return nil, fmt.Errorf("table %s: names ending in %s are the cluster profile's local tables", name, localSuffix)
	}
	if _, dup := t.tables[name]; dup {
		return nil, fmt.Errorf("table %s is created twice", name)
	}
	if !strings.HasPrefix(rest, "(") {
		return nil, fmt.Errorf("table %s: CREATE TABLE must list its columns", name)
	}
	end := matchParen(rest, 0)
	if end < 0 {
		return nil, fmt.Errorf("table %s: unbalanced parentheses in the column list", name)
	}
	cols, rest := rest[:end+1], strings.TrimSpace(rest[end+1:])
	em := reEngine.FindStringSubmatch(rest)
	if em == nil {
		return nil, fmt.Errorf("table %s: no ENGINE = clause", name)
	}
	engine := em[1]
	rest = rest[len(em[0]):]
	args := ""
	if strings.HasPrefix(rest, "(") {
		e := matchParen(rest, 0)
		if e < 0 {
			return nil, fmt.Errorf("table %s: unbalanced parentheses in ENGINE", name)
		}
		args, rest = strings.TrimSpace(rest[1:e]), strings.TrimSpace(rest[e+1:])
	}
	if !mergeTrees.MatchString(engine) {
		return nil, fmt.Errorf("table %s: engine %s is not of the MergeTree family (MergeTree, Replacing…, Summing…, Aggregating…, Collapsing…, VersionedCollapsing…, Graphite…), the only ones the cluster profile transforms", name, engine)
	}
	om := reOrderBy.FindStringSubmatch(rest)
	if om == nil {
		return nil, fmt.Errorf("table %s: no ORDER BY (the cluster profile needs the PARTITION BY / ORDER BY syntax)", name)
	}
	orderBy := strings.TrimSpace(om[1])

	if name == migrationsTable && t.cl.Replicated {
		t.tables[name] = kindShared
		// One replica per server of one table: the path has no {shard}, and
		// the replica name is unique across the cluster.
		path := "'/clickhouse/tables/all/{db_name}/" + name + "', '{shard}-{replica}'"
		return []string{"CREATE TABLE " + ifNotExists + "{db}." + name + t.onCluster() + " " + cols +
			"\nENGINE = Replicated" + engine + "(" + joinArgs(path, args) + ")\n" + rest}, nil
	}

	key := clusterShardingKeys[name]
	if key == "" {
		key = declaredKey
	}
	if key == "" {
		k, err := defaultShardingKey(engine, orderBy)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		key = k
	}
	local := name + localSuffix
	localEngine := engine + "(" + args + ")"
	if t.cl.Replicated {
		localEngine = "Replicated" + engine + "(" + joinArgs("'/clickhouse/tables/{shard}/{db_name}/"+local+"', '{replica}'", args) + ")"
	}
	t.tables[name] = kindSharded
	return []string{
		"CREATE TABLE " + ifNotExists + "{db}." + local + t.onCluster() + " " + cols + "\nENGINE = " + localEngine + "\n" + rest,
		"CREATE TABLE " + ifNotExists + "{db}." + name + t.onCluster() + " AS {db}." + local +
			"\nENGINE = Distributed('" + t.cl.Name + "', '{db_name}', '" + local + "', " + key + ")",
	}, nil
}

// defaultShardingKey keeps together every row the engine may merge: the
// whole sort key hashed. A plain MergeTree without a sort key merges nothing.
func defaultShardingKey(engine, orderBy string) (string, error) {
	inner := orderBy
	if strings.HasPrefix(inner, "(") && matchParen(inner, 0) == len(inner)-1 {
		inner = strings.TrimSpace(inner[1 : len(inner)-1])
	}
	if inner == "" || strings.EqualFold(inner, "tuple()") {
		if engine == "MergeTree" {
			return "rand()", nil
		}
		return "", fmt.Errorf("engine %s without a sort key: declare a sharding key with a `-- cluster sharding key: <expr>` line", engine)
	}
	return "cityHash64(" + inner + ")", nil
}

func (t *clusterTransformer) createMV(s string) ([]string, error) {
	m := reCreateMV.FindStringSubmatch(s)
	ifNotExists, name, rest := m[1], m[2], m[3]
	to := reMVTo.FindStringSubmatch(rest)
	if to == nil {
		return nil, fmt.Errorf("materialized view %s must write TO a table of ours and then AS SELECT (no ENGINE, no POPULATE): its own storage could not be sharded", name)
	}
	target, body := to[1], to[2]
	if t.tables[target] != kindSharded {
		return nil, fmt.Errorf("materialized view %s writes to %s, which is not a table an earlier statement created", name, target)
	}
	sources := map[string]bool{}
	for _, r := range reTableRef.FindAllStringSubmatch(body, -1) {
		sources[r[1]] = true
	}
	if len(sources) != 1 {
		return nil, fmt.Errorf("materialized view %s reads %d tables of ours; the cluster profile transforms views over exactly one (it fires on that table's local inserts)", name, len(sources))
	}
	for src := range sources {
		if t.tables[src] != kindSharded {
			return nil, fmt.Errorf("materialized view %s reads %s, which is not a table an earlier statement created", name, src)
		}
	}
	body = reTableRef.ReplaceAllString(body, "{db}.${1}"+localSuffix)
	t.tables[name] = kindMV
	return []string{"CREATE MATERIALIZED VIEW " + ifNotExists + "{db}." + name + t.onCluster() + " TO {db}." + target + localSuffix + " " + body}, nil
}

func (t *clusterTransformer) alter(s string) ([]string, error) {
	m := reAlter.FindStringSubmatch(s)
	name, ops := m[1], strings.TrimSpace(m[2])
	k, ok := t.tables[name]
	if !ok {
		return nil, fmt.Errorf("ALTER of %s, which no earlier statement created", name)
	}
	if k == kindMV || k == kindView {
		return nil, fmt.Errorf("ALTER of the view %s: drop and create it instead", name)
	}
	column, other := 0, 0
	for _, op := range splitTopLevel(ops, ',') {
		if reColumnOp.MatchString(strings.TrimSpace(op)) {
			column++
		} else {
			other++
		}
	}
	if column > 0 && other > 0 {
		return nil, fmt.Errorf("ALTER of %s mixes column changes with other changes: split it (columns go to the local and the Distributed table, the rest only to the local one)", name)
	}
	if k == kindShared {
		return []string{"ALTER TABLE {db}." + name + t.onCluster() + " " + ops}, nil
	}
	out := []string{"ALTER TABLE {db}." + name + localSuffix + t.onCluster() + " " + ops}
	if column > 0 {
		out = append(out, "ALTER TABLE {db}."+name+t.onCluster()+" "+ops)
	}
	return out, nil
}

// ClusterLocalTable is the table that holds the rows of name in the cluster
// profile (what retention drops partitions of), and name itself otherwise.
func (s *Store) clusterLocalTable(name string) string {
	if s.cluster.Enabled() && !(name == migrationsTable && s.cluster.Replicated) {
		return name + localSuffix
	}
	return name
}

// ClusterShardingKeys returns the declared sharding keys, sorted by table
// (for documentation and tests).
func ClusterShardingKeys() []string {
	var out []string
	for t, k := range clusterShardingKeys {
		out = append(out, t+": "+k)
	}
	sort.Strings(out)
	return out
}

func joinArgs(a, b string) string {
	if b == "" {
		return a
	}
	return a + ", " + b
}

// matchParen returns the index of the parenthesis closing the one at
// s[open], skipping quoted strings and identifiers; -1 if unbalanced.
func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '`', '"':
			j := skipQuoted(s, i)
			if j < 0 {
				return -1
			}
			i = j
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// skipQuoted returns the index of the quote closing the one at s[i].
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			return j
		}
	}
	return -1
}

// splitTopLevel splits s at sep outside parentheses and quotes.
func splitTopLevel(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '`' || c == '"':
			if j := skipQuoted(s, i); j >= 0 {
				i = j
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// stripComments removes `--` comments outside quotes.
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '`' || c == '"':
			j := skipQuoted(s, i)
			if j < 0 {
				j = len(s) - 1
			}
			b.WriteString(s[i : j+1])
			i = j
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func head(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// connSettings are the settings every statement of the cluster profile runs
// with: an INSERT into a Distributed table returns only once every shard
// has written its rows (not when they are queued on the server that took
// the insert), so offsets are committed after the rows are durable and the
// sealer records a seal version only after its rows are in (schema 0010).
// nil for one server.
func (c ClusterConfig) connSettings() clickhouse.Settings {
	if !c.Enabled() {
		return nil
	}
	return clickhouse.Settings{"insert_distributed_sync": 1}
}
