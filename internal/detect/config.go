package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/detections"
)

// Config is the analyzer's `detect:` section.
type Config struct {
	// Disabled turns detection off. Default false.
	Disabled bool `yaml:"disabled"`
	// RulesDir loads the rule pack from this directory and reloads it on
	// change. Default "": the pack embedded in the binary (detections/).
	RulesDir string `yaml:"rules_dir"`
	// WatchInterval is how often RulesDir is polled for changes. Default 3s.
	WatchInterval time.Duration `yaml:"watch_interval"`
	// MaxKeysPerRule bounds each stateful rule's groups. Default 50000.
	MaxKeysPerRule int `yaml:"max_keys_per_rule"`
	// Workers evaluate a batch's conditions in parallel. Default GOMAXPROCS.
	Workers int `yaml:"workers"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.WatchInterval < 0 {
		errs = append(errs, errors.New("detect.watch_interval must not be negative"))
	}
	if c.MaxKeysPerRule < 0 {
		errs = append(errs, errors.New("detect.max_keys_per_rule must not be negative"))
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("detect.workers must not be negative"))
	}
	if c.RulesDir != "" {
		if st, err := os.Stat(c.RulesDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("detect.rules_dir %q is not a readable directory", c.RulesDir))
		}
	}
	return errors.Join(errs...)
}

// Open loads the configured pack, builds the engine with ClickHouse
// baselines (conn and database may be nil/"" for in-memory baselines) and
// loads them. It starts no goroutine: when cfg.RulesDir is set, run
// `go eng.Watch(ctx, cfg.RulesDir, cfg.WatchInterval, nil)` for hot reload.
func Open(ctx context.Context, cfg Config, conn driver.Conn, database string, reg prometheus.Registerer, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		pack *Pack
		err  error
	)
	if cfg.RulesDir != "" {
		pack, err = LoadDir(cfg.RulesDir)
	} else {
		pack, err = Load(detections.FS, ".")
	}
	if err != nil {
		return nil, err
	}
	opts := Options{MaxKeysPerRule: cfg.MaxKeysPerRule, Workers: cfg.Workers, Registerer: reg, Logger: log}
	if conn != nil {
		opts.Baselines = NewClickHouseBaselines(conn, database)
	}
	eng, err := New(pack, opts)
	if err != nil {
		return nil, err
	}
	if err := eng.LoadBaselines(ctx); err != nil {
		return nil, err
	}
	return eng, nil
}
