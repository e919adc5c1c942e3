package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/backtest"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// backtestMain runs `analyzer rules backtest <rule-file-or-id> --since 30d
// [--until ...] [--tenant ...]`: the rule over the stored events, diffed
// against the deployed version (docs/rules.md, "Backtest").
func backtestMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return exitCode("rules backtest", runBacktest(ctx, args))
}

func runBacktest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("analyzer rules backtest", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: analyzer rules backtest <rule-file-or-id> [flags]")
		fs.PrintDefaults()
	}
	path := fs.String("config", os.Getenv("MCPWATCH_ANALYZER_CONFIG"), "YAML config file (env MCPWATCH_ANALYZER_CONFIG): ClickHouse and detect.rules_dir")
	chAddr := fs.String("clickhouse-addr", "", "ClickHouse native addresses, comma separated (env MCPWATCH_CLICKHOUSE_ADDR)")
	chDB := fs.String("clickhouse-database", "", "ClickHouse database (env MCPWATCH_CLICKHOUSE_DATABASE)")
	since := fs.String("since", "7d", `start: a duration back from --until ("30d", "12h") or an RFC 3339 time`)
	until := fs.String("until", "", "end (exclusive): an RFC 3339 time or a duration back from now; default now")
	tenant := fs.String("tenant", "", "only this tenant's events (default all)")
	maxEvents := fs.Int64("max-events", 0, "stop after this many events (default 0: no limit)")
	samples := fs.Int("samples", 20, "sample findings shown per diff class")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	// The rule may come before the flags: `backtest rule.yaml --since 30d`.
	var rule string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		rule, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if rule == "" && fs.NArg() > 0 {
		rule = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if rule == "" {
		fs.Usage()
		return errors.New("name a rule file or a rule id")
	}
	now := time.Now().UTC()
	to, err := backtest.ParseTime(*until, now, now)
	if err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	from, err := backtest.ParseTime(*since, to, time.Time{})
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}

	c, err := LoadConfig(*path, os.LookupEnv)
	if err != nil {
		return err
	}
	if *chAddr != "" {
		c.ClickHouse.Addr = splitList(*chAddr)
	}
	if *chDB != "" {
		c.ClickHouse.Database = *chDB
	}
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = []string{"unused:9092"} // a backtest talks to ClickHouse only
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	// The deployed pack is the one `run` would load.
	var pack *detect.Pack
	if c.Detect.RulesDir != "" {
		pack, err = detect.LoadDir(c.Detect.RulesDir)
	} else {
		pack, err = detect.Load(detections.FS, ".")
	}
	if err != nil {
		return fmt.Errorf("cannot load the deployed pack: %w", err)
	}
	r, deployed, err := backtest.Resolve(rule, pack)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, c.ClickHouse)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := backtest.Run(ctx, st, backtest.Request{Rule: r, Deployed: deployed, Lists: pack.Lists,
		Tenant: *tenant, Since: from, Until: to, MaxEvents: *maxEvents, Samples: *samples, Workers: c.Detect.Workers})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(os.Stdout)
}
