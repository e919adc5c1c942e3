package store

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

var testCluster = ClusterConfig{Name: "mcpwatch", Replicated: true}

func clusterStmts(t *testing.T, cl ClusterConfig, files ...string) [][]string {
	t.Helper()
	var ms []Migration
	for i, f := range files {
		ms = append(ms, Migration{Version: uint32(i + 1), Name: "000" + string(rune('1'+i)) + "_t.sql", SQL: f})
	}
	out, err := ClusterStatements(ms, "mcpwatch", cl)
	if err != nil {
		t.Fatalf("ClusterStatements: %v", err)
	}
	return out
}

// Every shipped migration transforms, in both cluster variants, and the
// result has the shape the profile promises.
func TestClusterStatementsOfEveryMigration(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	placeholder := regexp.MustCompile(`\{\w+\}`)
	for _, cl := range []ClusterConfig{testCluster, {Name: "mcpwatch"}} {
		all, err := ClusterStatements(ms, "mcpwatch", cl)
		if err != nil {
			t.Fatalf("replicated=%v: %v", cl.Replicated, err)
		}
		if len(all) != len(ms) {
			t.Fatalf("%d statement lists for %d migrations", len(all), len(ms))
		}
		distributed := map[string]string{}
		for i, stmts := range all {
			if len(stmts) == 0 {
				t.Errorf("%s: no statements", ms[i].Name)
			}
			for _, s := range stmts {
				if !strings.HasPrefix(s, "INSERT") && !strings.Contains(s, " ON CLUSTER `mcpwatch`") {
					t.Errorf("%s: statement without ON CLUSTER: %s", ms[i].Name, s)
				}
				for _, p := range placeholder.FindAllString(s, -1) {
					if p != "{shard}" && p != "{replica}" {
						t.Errorf("%s: placeholder %s left in %s", ms[i].Name, p, s)
					}
				}
				if strings.Contains(s, "MergeTree(") && !strings.Contains(s, "_local ON CLUSTER") && !strings.Contains(s, "schema_migrations") {
					t.Errorf("%s: a MergeTree table that is not a local table: %s", ms[i].Name, s)
				}
				if cl.Replicated && strings.Contains(s, "MergeTree(") && !strings.Contains(s, "ENGINE = Replicated") {
					t.Errorf("%s: not replicated: %s", ms[i].Name, s)
				}
				if m := regexp.MustCompile("`mcpwatch`.(\\w+) ON CLUSTER `mcpwatch` AS `mcpwatch`.(\\w+)\nENGINE = Distributed\\('mcpwatch', 'mcpwatch', '(\\w+)', (.+)\\)$").FindStringSubmatch(s); m != nil {
					if m[2] != m[1]+"_local" || m[3] != m[2] {
						t.Errorf("Distributed %s over %s/%s", m[1], m[2], m[3])
					}
					distributed[m[1]] = m[4]
				}
				if strings.HasPrefix(s, "CREATE MATERIALIZED VIEW") && (!regexp.MustCompile("TO `mcpwatch`.\\w+_local AS").MatchString(s) || !strings.Contains(s, "FROM `mcpwatch`.events_local")) {
					t.Errorf("materialized view not on the local tables: %s", s)
				}
			}
		}
		for table, key := range clusterShardingKeys {
			if got, ok := distributed[table]; ok && got != key {
				t.Errorf("%s sharded by %s, want %s", table, got, key)
			}
		}
		for _, table := range RetentionTables() {
			if _, ok := distributed[table]; !ok {
				t.Errorf("replicated=%v: no Distributed table %s", cl.Replicated, table)
			}
		}
		_, sharedMigrations := distributed["schema_migrations"]
		if sharedMigrations == cl.Replicated {
			t.Errorf("replicated=%v: schema_migrations Distributed=%v", cl.Replicated, sharedMigrations)
		}
	}
}

func TestClusterTransformEvents(t *testing.T) {
	ms, _ := Migrations()
	all, err := ClusterStatements(ms[:2], "db1", testCluster)
	if err != nil {
		t.Fatal(err)
	}
	mig, ev := all[0], all[1]
	if len(mig) != 1 || !strings.Contains(mig[0], "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/db1/schema_migrations', '{shard}-{replica}', applied_at)") {
		t.Errorf("schema_migrations: %q", mig)
	}
	if len(ev) != 2 {
		t.Fatalf("events: %d statements, want local + Distributed", len(ev))
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `db1`.events_local ON CLUSTER `mcpwatch` (\n    event_id String,",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db1/events_local', '{replica}', ingested_at)\nPARTITION BY toYYYYMMDD(ts)\nORDER BY (tenant, agent_id, ts, event_id)",
	} {
		if !strings.Contains(ev[0], want) {
			t.Errorf("events local table lacks %q:\n%s", want, ev[0])
		}
	}
	if want := "CREATE TABLE IF NOT EXISTS `db1`.events ON CLUSTER `mcpwatch` AS `db1`.events_local\nENGINE = Distributed('mcpwatch', 'db1', 'events_local', cityHash64(tenant, agent_id))"; ev[1] != want {
		t.Errorf("events Distributed:\n%s\nwant\n%s", ev[1], want)
	}
	// Not replicated: plain engines with their own arguments.
	plain, err := ClusterStatements(ms[:2], "db1", ClusterConfig{Name: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain[1][0], "ENGINE = ReplacingMergeTree(ingested_at)") || !strings.Contains(plain[0][1], "Distributed('c2', 'db1', 'schema_migrations_local', cityHash64(version))") {
		t.Errorf("unreplicated: %q", plain)
	}
}

const (
	tableA = "CREATE TABLE IF NOT EXISTS {db}.a (\n tenant String, k String, v UInt64, ts DateTime\n) ENGINE = ReplacingMergeTree(v)\nPARTITION BY toYYYYMMDD(ts)\nORDER BY (tenant, k)"
	tableB = "CREATE TABLE IF NOT EXISTS {db}.b (tenant String, n AggregateFunction(uniqExact, String)) ENGINE = AggregatingMergeTree() ORDER BY tenant"
)

func TestClusterTransformStatements(t *testing.T) {
	// A table of a future migration: sharded by its whole sort key unless it
	// declares a key.
	got := clusterStmts(t, testCluster, tableA)[0]
	if !strings.HasSuffix(got[1], "'a_local', cityHash64(tenant, k))") {
		t.Errorf("default key: %s", got[1])
	}
	got = clusterStmts(t, testCluster, "-- cluster sharding key: cityHash64(tenant)\n"+tableA)[0]
	if !strings.HasSuffix(got[1], "'a_local', cityHash64(tenant))") {
		t.Errorf("declared key: %s", got[1])
	}
	// ALTER … ADD COLUMN goes to the local and the Distributed table;
	// other ALTERs to the local one.
	got = clusterStmts(t, testCluster, tableA, "ALTER TABLE {db}.a ADD COLUMN x String DEFAULT '', ADD COLUMN y UInt8;\nALTER TABLE {db}.a DELETE WHERE v = 0")[1]
	want := []string{
		"ALTER TABLE `mcpwatch`.a_local ON CLUSTER `mcpwatch` ADD COLUMN x String DEFAULT '', ADD COLUMN y UInt8",
		"ALTER TABLE `mcpwatch`.a ON CLUSTER `mcpwatch` ADD COLUMN x String DEFAULT '', ADD COLUMN y UInt8",
		"ALTER TABLE `mcpwatch`.a_local ON CLUSTER `mcpwatch` DELETE WHERE v = 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ALTER:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A materialized view reads and writes local tables; a backfill INSERT
	// runs once through the Distributed tables; a plain view reads them.
	rest := clusterStmts(t, testCluster, tableA, tableB,
		"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.b_mv\nTO {db}.b\nAS SELECT tenant, uniqExactState(k) AS n FROM {db}.a GROUP BY tenant",
		"INSERT INTO {db}.b (tenant, n) SELECT tenant, uniqExactState(k) FROM {db}.a GROUP BY tenant",
		"CREATE VIEW IF NOT EXISTS {db}.v AS SELECT tenant FROM {db}.a",
		"DROP TABLE IF EXISTS {db}.b_mv;\nDROP TABLE {db}.a")[2:]
	want = []string{
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `mcpwatch`.b_mv ON CLUSTER `mcpwatch` TO `mcpwatch`.b_local AS SELECT tenant, uniqExactState(k) AS n FROM `mcpwatch`.a_local GROUP BY tenant",
		"INSERT INTO `mcpwatch`.b (tenant, n) SELECT tenant, uniqExactState(k) FROM `mcpwatch`.a GROUP BY tenant",
		"CREATE VIEW IF NOT EXISTS `mcpwatch`.v ON CLUSTER `mcpwatch` AS SELECT tenant FROM `mcpwatch`.a",
		"DROP TABLE IF EXISTS `mcpwatch`.b_mv ON CLUSTER `mcpwatch`",
		"DROP TABLE `mcpwatch`.a ON CLUSTER `mcpwatch`",
		"DROP TABLE `mcpwatch`.a_local ON CLUSTER `mcpwatch`",
	}
	var flat []string
	for _, g := range rest {
		for _, s := range g {
			flat = append(flat, strings.Join(strings.Fields(s), " "))
		}
	}
	if strings.Join(flat, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(flat, "\n"), strings.Join(want, "\n"))
	}
}

// What the transformer cannot carry onto a cluster fails the run, naming
// the migration and the reason.
func TestClusterTransformFailsLoudly(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []string
		want  string
	}{
		{"engine", []string{"CREATE TABLE {db}.m (a String) ENGINE = Memory"}, "engine Memory is not of the MergeTree family"},
		{"old syntax", []string{"CREATE TABLE {db}.m (d Date, a String) ENGINE = MergeTree(d, (a), 8192)"}, "no ORDER BY"},
		{"view storage", []string{tableA, "CREATE MATERIALIZED VIEW {db}.mv ENGINE = MergeTree() ORDER BY k AS SELECT k FROM {db}.a"}, "must write TO a table"},
		{"view of two", []string{tableA, tableB, "CREATE MATERIALIZED VIEW {db}.mv TO {db}.b AS SELECT a.tenant, uniqExactState(a.k) AS n FROM {db}.a AS a JOIN {db}.b AS x USING tenant GROUP BY tenant"}, "reads 2 tables"},
		{"mixed alter", []string{tableA, "ALTER TABLE {db}.a ADD COLUMN x String, DELETE WHERE v = 0"}, "mixes column changes"},
		{"unknown table", []string{"ALTER TABLE {db}.nope ADD COLUMN x String"}, "no earlier statement created"},
		{"rename", []string{tableA, "RENAME TABLE {db}.a TO {db}.a2"}, "is not one of CREATE TABLE"},
		{"on cluster", []string{"CREATE TABLE {db}.m ON CLUSTER x (a String) ENGINE = MergeTree() ORDER BY a"}, "already says ON CLUSTER"},
		{"key-less replacing", []string{"CREATE TABLE {db}.m (a String) ENGINE = ReplacingMergeTree() ORDER BY tuple()"}, "declare a sharding key"},
		{"local name", []string{"CREATE TABLE {db}.x_local (a String) ENGINE = MergeTree() ORDER BY a"}, "local tables"},
	} {
		var ms []Migration
		for i, f := range c.files {
			ms = append(ms, Migration{Version: uint32(i + 1), Name: "00" + string(rune('1'+i)) + "_x.sql", SQL: f})
		}
		_, err := ClusterStatements(ms, "db", testCluster)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cannot transform migration 00") {
			t.Errorf("%s: error %v, want one naming the migration and %q", c.name, err, c.want)
		}
	}
}

func TestClusterConfigValidate(t *testing.T) {
	err := Config{Cluster: ClusterConfig{Name: "a-b"}}.WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "clickhouse.cluster.name") {
		t.Errorf("bad cluster name: %v", err)
	}
	err = Config{Cluster: ClusterConfig{Replicated: true}}.WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "clickhouse.cluster.replicated") {
		t.Errorf("replicated without a name: %v", err)
	}
	if err := (Config{Cluster: testCluster}).WithDefaults().Validate(); err != nil {
		t.Errorf("cluster profile: %v", err)
	}
}

// ClickHouse 18.16 parses every statement of the cluster profile: with no
// cluster (and no ZooKeeper) configured, it must fail each one only for the
// missing cluster, never with a syntax error. The statements of the cluster
// profile's retention are checked the same way.
func TestClusterStatementsParseOn1816(t *testing.T) {
	s := migratedStore(t)
	ctx := ctxT(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	all, err := ClusterStatements(ms, s.db, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err = s.ddlContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := &Store{conn: s.conn, db: s.db, cluster: testCluster}
	_, err = cs.DropPartitionsOlderThan(ctx, "events", 1, time.Now())
	checkNotSyntax(t, "retention listing", err)
	n := 0
	for _, stmts := range all {
		for _, st := range stmts {
			if strings.HasPrefix(st, "INSERT") {
				continue // no ON CLUSTER: it runs on the Distributed tables
			}
			checkNotSyntax(t, st, s.conn.Exec(ctx, st))
			n++
		}
	}
	checkNotSyntax(t, "drop partition", s.conn.Exec(ctx, "ALTER TABLE "+s.table("events_local")+" ON CLUSTER `mcpwatch` DROP PARTITION 20240101"))
	t.Logf("%d cluster statements parsed by 18.16", n)
}

func checkNotSyntax(t *testing.T, what string, err error) {
	t.Helper()
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Errorf("%s: %v, want a server exception for the missing cluster", what, err)
		return
	}
	// 170 BAD_GET: "Requested cluster 'mcpwatch' not found", raised after
	// the statement parsed (62 would be a syntax error).
	if ex.Code != 170 {
		t.Errorf("%s: code %d %s, want the missing cluster", what, ex.Code, ex.Message)
	}
}

// Migrate with the cluster profile refuses a database of the single-server
// profile, and a user whose distributed_product_mode is not global (the
// test server's default is 'deny').
func TestMigrateClusterProfileChecks(t *testing.T) {
	s := migratedStore(t)
	ctx := context.Background()
	cs := &Store{conn: s.conn, db: s.db, cluster: testCluster}
	if _, err := cs.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "created by the single-server profile") {
		t.Errorf("cluster profile on a single-server database: %v", err)
	}
	fresh := &Store{conn: s.conn, db: s.db + "_c", cluster: testCluster}
	if _, err := fresh.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "distributed_product_mode is \"deny\"") {
		t.Errorf("cluster profile without distributed_product_mode=global: %v", err)
	}
	if got := cs.clusterLocalTable("events"); got != "events_local" {
		t.Errorf("local table of events = %s", got)
	}
	if got := s.clusterLocalTable("events"); got != "events" {
		t.Errorf("single server: local table of events = %s", got)
	}
}
