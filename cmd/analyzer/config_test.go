package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

func TestLoadConfigFull(t *testing.T) {
	c, err := LoadConfig("testdata/full.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ClickHouse.Database != "audit" || c.ClickHouse.PasswordFile != "/run/secrets/clickhouse" || c.ClickHouse.DialTimeout != 5*time.Second {
		t.Errorf("clickhouse %+v", c.ClickHouse)
	}
	if c.Analyzer.BatchRows != 20000 || c.Analyzer.BatchInterval != 500*time.Millisecond || c.Analyzer.AdminAddr != ":9464" {
		t.Errorf("analyzer %+v", c.Analyzer)
	}
	if r := c.Analyzer.Retention; r.Events != 14 || r.Findings != -1 || r.Incidents != 365 || r.CallsPerMinute != 30 {
		t.Errorf("retention %+v", r)
	}
	if *c.MigrateOnStart || c.Log.Level != "debug" || len(c.Kafka.Brokers) != 2 || c.Kafka.ClientID != "mcpwatch" {
		t.Errorf("config %+v", c)
	}
}

func TestLoadConfigTypoRejected(t *testing.T) {
	_, err := LoadConfig("testdata/typo.yaml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "field adress not found") {
		t.Fatalf("typo: %v", err)
	}
}

func TestConfigInvalidReportsEverything(t *testing.T) {
	c, err := LoadConfig("testdata/invalid.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = c.withDefaults().Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"kafka.brokers", "clickhouse.database", "only one of password", "analyzer.batch_rows", "log.level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}

func TestEnvAndFlagsOverride(t *testing.T) {
	env := map[string]string{
		"MCPWATCH_KAFKA_BROKERS":       "a:1, b:2",
		"MCPWATCH_CLICKHOUSE_ADDR":     "ch:9000",
		"MCPWATCH_CLICKHOUSE_PASSWORD": "secret",
	}
	c, err := LoadConfig("testdata/full.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Kafka.Brokers, ",") != "a:1,b:2" || c.ClickHouse.Addr[0] != "ch:9000" {
		t.Errorf("env: %+v %+v", c.Kafka.Brokers, c.ClickHouse.Addr)
	}
	// The password stays in the environment; the file setting yields to it.
	if c.ClickHouse.PasswordEnv != "MCPWATCH_CLICKHOUSE_PASSWORD" || c.ClickHouse.PasswordFile != "" || c.ClickHouse.Password != "" {
		t.Errorf("password source %+v", c.ClickHouse)
	}
	t.Setenv("MCPWATCH_ANALYZER_CONFIG", "testdata/full.yaml")
	c, err = loadWithFlags("run", []string{"-clickhouse-database", "flagdb", "-admin-addr", "-", "-group", "g2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClickHouse.Database != "flagdb" || c.Analyzer.AdminAddr != "-" || c.Analyzer.Group != "g2" {
		t.Errorf("flags: %+v", c)
	}
	if _, err := loadWithFlags("run", []string{"extra"}); err == nil {
		t.Error("stray argument accepted")
	}
}

func TestDispatch(t *testing.T) {
	called := ""
	subcommands["test-sub"] = func(args []string) int { called = strings.Join(args, " "); return 7 }
	defer delete(subcommands, "test-sub")
	if code := dispatch([]string{"test-sub", "x", "y"}); code != 7 || called != "x y" {
		t.Fatalf("dispatch %d %q", code, called)
	}
	if code := dispatch([]string{"nope"}); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

func TestCheckConfig(t *testing.T) {
	t.Setenv("MCPWATCH_ANALYZER_CONFIG", "testdata/full.yaml")
	_, err := loadWithFlags("migrate", []string{"-check-config"})
	if err != errConfigChecked || exitCode("migrate", err) != 0 {
		t.Fatalf("check-config: %v", err)
	}
	t.Setenv("MCPWATCH_ANALYZER_CONFIG", "testdata/invalid.yaml")
	_, err = loadWithFlags("migrate", []string{"-check-config"})
	if err == nil || exitCode("migrate", err) != 1 {
		t.Fatalf("invalid config passed the check: %v", err)
	}
}

// TestSecurityCheckConfigValidatesResponse: `-check-config` validates the
// whole response section and names every problem at once.
func TestSecurityCheckConfigValidatesResponse(t *testing.T) {
	t.Setenv("MCPWATCH_ANALYZER_CONFIG", "testdata/invalid_response.yaml")
	_, err := loadWithFlags("run", []string{"-check-config"})
	if err == nil || exitCode("run", err) != 1 {
		t.Fatalf("invalid response section passed the check: %v", err)
	}
	for _, want := range []string{
		"response.data_dir is required",
		"response.reopen_within: -1h0m0s is negative",
		`response.notify: routes[0]: unknown receiver "pager"`,
		`playbook "page-oncall" step "page": unknown receiver "oncall"`,
		`api_tokens[1] (ops): role "root" is not viewer, responder or admin`,
		"api_tokens[2] (ops): duplicate name",
		"api_tokens[2] (ops): exactly one of env or file",
		"api_tokens[3] (): name is required",
		"api_tokens[3] (): exactly one of env or file",
		"api_tokens[3] (): tenants is empty",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "api_tokens[0]") {
		t.Errorf("the valid token was reported:\n%v", err)
	}
}

// TestCallJoinConfig: the call join's keys load, default, disable with 0s
// and are validated by -check-config.
func TestCallJoinConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("kafka: {brokers: [\"k:9092\"], calls_topic: ev.joins}\nclickhouse: {addr: [\"ch:9000\"], database: mcpwatch}\nanalyzer:\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(body string) Config {
		t.Helper()
		c, err := LoadConfig(write("c.yaml", body), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return c.withDefaults()
	}
	c := load("  group: g\n")
	if !c.Analyzer.JoinEnabled() || *c.Analyzer.CallJoinWait != 10*time.Second || c.Analyzer.CallJoinGroup != "g-join" ||
		c.Kafka.CallsTopic != "ev.joins" || c.Analyzer.CallJoinMaxHeld != 100000 || c.Analyzer.CallJoinPairMemory != time.Hour {
		t.Errorf("defaults: %+v %q", c.Analyzer, c.Kafka.CallsTopic)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := load("  call_join_wait: 0s\n"); c.Analyzer.JoinEnabled() || c.Validate() != nil {
		t.Errorf("call_join_wait 0s: enabled %v, %v", c.Analyzer.JoinEnabled(), c.Validate())
	}
	if c := load("  call_join_wait: 3s\n  call_join_max_held: 10\n"); *c.Analyzer.CallJoinWait != 3*time.Second || c.Analyzer.CallJoinMaxHeld != 10 {
		t.Errorf("set: %+v", c.Analyzer)
	}
	t.Setenv("MCPWATCH_ANALYZER_CONFIG", write("bad.yaml", "  group: g\n  call_join_wait: -1s\n  call_join_group: g\n  call_join_max_held: -5\n"))
	_, err := loadWithFlags("run", []string{"-check-config"})
	if err == nil || exitCode("run", err) != 1 {
		t.Fatalf("invalid call join config passed the check: %v", err)
	}
	for _, want := range []string{"analyzer.call_join_wait", "analyzer.call_join_group", "analyzer.call_join_max_held"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
	c = load("  group: g\n")
	c.Kafka.CallsTopic = c.Kafka.Topic
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "kafka.calls_topic") {
		t.Errorf("calls topic = events topic: %v", err)
	}
}
