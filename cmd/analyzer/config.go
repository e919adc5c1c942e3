package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/analyzer"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/enrich"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/rollup"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Config is the analyzer's YAML file (docs/analyzer.md). Unknown keys are
// errors.
type Config struct {
	Kafka      kafka.Config    `yaml:"kafka"`
	ClickHouse store.Config    `yaml:"clickhouse"`
	Analyzer   analyzer.Config `yaml:"analyzer"`
	// MigrateOnStart applies pending migrations before consuming. Default true.
	MigrateOnStart *bool     `yaml:"migrate_on_start"`
	Log            LogConfig `yaml:"log"`
	// Detect selects and tunes the rule pack run on every batch
	// (internal/detect.Config; docs/detections.md).
	Detect detect.Config `yaml:"detect"`
	// Response configures incidents, notifications, playbooks and the HTTP
	// API (internal/api, docs/api.md); absent = findings are stored but no
	// incidents are managed and no API is served.
	Response *analyzer.ResponseConfig `yaml:"response"`
	// Enrich fills server identity and derived sessions from earlier
	// events of the same agent (internal/enrich; docs/event.md).
	Enrich enrich.Config `yaml:"enrich"`
	// Rollup seals closed minutes of calls_per_minute into plain counts for
	// fast dashboards (internal/rollup; on by default).
	Rollup rollup.Config `yaml:"rollup"`
}

// LogConfig selects the log level (debug, info, warn, error; default info)
// and format (json or text; default json).
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// envOverrides maps environment variables onto config fields; they win over
// the file, and flags win over them.
var envOverrides = []struct {
	name string
	set  func(c *Config, v string)
}{
	{"MCPWATCH_KAFKA_BROKERS", func(c *Config, v string) { c.Kafka.Brokers = splitList(v) }},
	{"MCPWATCH_KAFKA_TOPIC", func(c *Config, v string) { c.Kafka.Topic = v }},
	{"MCPWATCH_CLICKHOUSE_ADDR", func(c *Config, v string) { c.ClickHouse.Addr = splitList(v) }},
	{"MCPWATCH_CLICKHOUSE_DATABASE", func(c *Config, v string) { c.ClickHouse.Database = v }},
	{"MCPWATCH_CLICKHOUSE_USERNAME", func(c *Config, v string) { c.ClickHouse.Username = v }},
	// The password itself stays in the environment; only its name is kept.
	{"MCPWATCH_CLICKHOUSE_PASSWORD", func(c *Config, v string) {
		c.ClickHouse.Password, c.ClickHouse.PasswordFile, c.ClickHouse.PasswordEnv = "", "", "MCPWATCH_CLICKHOUSE_PASSWORD"
	}},
	{"MCPWATCH_ANALYZER_GROUP", func(c *Config, v string) { c.Analyzer.Group = v }},
	{"MCPWATCH_ANALYZER_ADMIN_ADDR", func(c *Config, v string) { c.Analyzer.AdminAddr = v }},
	{"MCPWATCH_ANALYZER_INSTANCE_ID", func(c *Config, v string) { c.Analyzer.InstanceID = v }},
	{"MCPWATCH_ANALYZER_ROLES", func(c *Config, v string) { c.Analyzer.Roles = splitList(v) }},
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// LoadConfig reads path ("" = no file), applies environment overrides
// (lookup, usually os.LookupEnv) and defaults. It does not validate.
func LoadConfig(path string, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("cannot read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("cannot parse config %s: %w", path, err)
		}
	}
	for _, o := range envOverrides {
		if v, ok := lookup(o.name); ok && v != "" {
			o.set(&c, v)
		}
	}
	return c, nil
}

// withDefaults fills every unset field.
func (c Config) withDefaults() Config {
	c.Kafka = c.Kafka.WithDefaults()
	c.ClickHouse = c.ClickHouse.WithDefaults()
	c.Analyzer = c.Analyzer.WithDefaults()
	c.Rollup = c.Rollup.WithDefaults()
	if c.MigrateOnStart == nil {
		t := true
		c.MigrateOnStart = &t
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.ClickHouse.Validate(), c.Analyzer.Validate(), c.Detect.Validate(), c.Rollup.Validate(), c.Enrich.Validate()}
	if c.Response != nil {
		errs = append(errs, c.Response.Validate())
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		errs = append(errs, fmt.Errorf("log.format: %q is not json or text", c.Log.Format))
	}
	return errors.Join(errs...)
}
