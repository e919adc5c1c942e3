package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpwatch/mcpwatch/internal/analyzer"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/enrich"
	"github.com/mcpwatch/mcpwatch/internal/rollup"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// crashEnv makes the analyzer SIGKILL itself after the Nth batch's inserts
// and before its commit: the replay test's crash point. Never set it in
// production.
const crashEnv = "MCPWATCH_TEST_CRASH_BEFORE_COMMIT"

// commonFlags parses the flags shared by run and migrate into a config.
func loadWithFlags(name string, args []string) (Config, error) {
	fs := flag.NewFlagSet("analyzer "+name, flag.ContinueOnError)
	path := fs.String("config", os.Getenv("MCPWATCH_ANALYZER_CONFIG"), "YAML config file (env MCPWATCH_ANALYZER_CONFIG)")
	brokers := fs.String("kafka-brokers", "", "Kafka seed brokers, comma separated (env MCPWATCH_KAFKA_BROKERS)")
	topic := fs.String("kafka-topic", "", "events topic (env MCPWATCH_KAFKA_TOPIC)")
	chAddr := fs.String("clickhouse-addr", "", "ClickHouse native addresses, comma separated (env MCPWATCH_CLICKHOUSE_ADDR)")
	chDB := fs.String("clickhouse-database", "", "ClickHouse database (env MCPWATCH_CLICKHOUSE_DATABASE)")
	group := fs.String("group", "", "Kafka consumer group (env MCPWATCH_ANALYZER_GROUP)")
	admin := fs.String("admin-addr", "", `admin listener, "-" disables (env MCPWATCH_ANALYZER_ADMIN_ADDR)`)
	roles := fs.String("roles", "", "roles to run, comma separated: ingest,detect,respond (default all; env MCPWATCH_ANALYZER_ROLES)")
	noMigrate := fs.Bool("no-migrate", false, "do not migrate on start (run only)")
	checkOnly := fs.Bool("check-config", false, "load and validate the config, print \"config ok\" and exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c, err := LoadConfig(*path, os.LookupEnv)
	if err != nil {
		return c, err
	}
	if *brokers != "" {
		c.Kafka.Brokers = splitList(*brokers)
	}
	if *topic != "" {
		c.Kafka.Topic = *topic
	}
	if *chAddr != "" {
		c.ClickHouse.Addr = splitList(*chAddr)
	}
	if *chDB != "" {
		c.ClickHouse.Database = *chDB
	}
	if *group != "" {
		c.Analyzer.Group = *group
	}
	if *admin != "" {
		c.Analyzer.AdminAddr = *admin
	}
	if *roles != "" {
		c.Analyzer.Roles = splitList(*roles)
	}
	if *noMigrate {
		f := false
		c.MigrateOnStart = &f
	}
	if name == "seal" && len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = []string{"unused:9092"} // seal talks to ClickHouse only
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("invalid config:\n%w", err)
	}
	if *checkOnly {
		fmt.Println("config ok")
		return c, errConfigChecked
	}
	return c, nil
}

func newLogger(c LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// errConfigChecked ends a -check-config run successfully.
var errConfigChecked = errors.New("config checked")

func exitCode(name string, err error) int {
	if err == nil || errors.Is(err, errConfigChecked) {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(os.Stderr, "analyzer %s: %v\n", name, err)
	return 1
}

func migrateMain(args []string) int {
	return storeCommand("migrate", args, func(ctx context.Context, c Config, log *slog.Logger, st *store.Store) error {
		res, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		log.Info("migrations done", "database", st.Database(), "applied", res.Applied, "already_applied", len(res.Skipped))
		return nil
	})
}

// sealMain runs the rollup sealer until nothing is left to seal, once (the
// same code `run` runs every rollup.interval): for a backlog after an
// upgrade, and for the plugin's benchmark.
func sealMain(args []string) int {
	return storeCommand("seal", args, func(ctx context.Context, c Config, log *slog.Logger, st *store.Store) error {
		res, err := rollup.New(st.Conn(), st.Database(), c.Rollup, log).SealAll(ctx)
		if err != nil {
			return err
		}
		log.Info("sealed closed minutes and hours", "database", st.Database(), "minutes", res.Minutes, "hours", res.Hours, "rows", res.Rows)
		return nil
	})
}

// storeCommand runs a one-shot subcommand that needs only the config and an
// open store, and turns its error into the exit code.
func storeCommand(name string, args []string, do func(context.Context, Config, *slog.Logger, *store.Store) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return exitCode(name, func() error {
		c, err := loadWithFlags(name, args)
		if err != nil {
			return err
		}
		st, err := store.Open(ctx, c.ClickHouse)
		if err != nil {
			return err
		}
		defer st.Close()
		return do(ctx, c, newLogger(c.Log), st)
	}())
}

func runMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return exitCode("run", run(ctx, args))
}

func run(ctx context.Context, args []string) error {
	c, err := loadWithFlags("run", args)
	if err != nil {
		return err
	}
	log := newLogger(c.Log)
	st, err := store.Open(ctx, c.ClickHouse)
	if err != nil {
		return err
	}
	defer st.Close()
	if *c.MigrateOnStart {
		res, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		log.Info("migrations done", "database", st.Database(), "applied", res.Applied, "already_applied", len(res.Skipped))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o := analyzer.Options{Kafka: c.Kafka, Config: c.Analyzer, Store: st, Logger: log, Registry: reg}
	var a *analyzer.Analyzer
	var engine, groups *detect.Engine
	if !c.Detect.Disabled {
		// The ingest role's engine applies the rules grouped by agent and
		// hands the others to the detect role (whichever process runs it),
		// whose engine owns their groups (docs/analyzer.md, "Roles").
		engine, err = detect.Open(ctx, c.Detect, st.Conn(), st.Database(),
			prometheus.WrapRegistererWith(prometheus.Labels{"role": analyzer.RoleIngest}, reg), log)
		if err != nil {
			return err
		}
		engine.SetRepartition(true)
		o.Detector = engine
		if c.Analyzer.Has(analyzer.RoleDetect) {
			groups, err = detect.New(engine.Pack(), detect.Options{MaxKeysPerRule: c.Detect.MaxKeysPerRule, Workers: 1, Logger: log,
				Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"role": analyzer.RoleDetect}, reg)})
			if err != nil {
				return err
			}
			o.DetectState = groups
		}
		log.Info("detections loaded", "rules", len(engine.Rules()), "rules_dir", c.Detect.RulesDir)
	}
	if c.Analyzer.Has(analyzer.RoleIngest) {
		enr, err := enrich.New(c.Enrich, enrich.Options{Conn: st.Conn(), Database: st.Database(), Registerer: reg})
		if err != nil {
			return err
		}
		o.Enricher = enr
	}
	var resp *analyzer.Responder
	if c.Analyzer.Has(analyzer.RoleRespond) {
		if c.Response != nil {
			ro := analyzer.ResponderOptions{Conn: st.Conn(), Database: st.Database(), Logger: log, Registerer: reg, Events: st,
				Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
				Ready:   func(ctx context.Context) error { return a.Ready(ctx) }}
			if engine != nil {
				ro.Pack = engine.Pack
			}
			if resp, err = analyzer.NewResponder(ctx, *c.Response, ro); err != nil {
				return err
			}
			o.Sink, o.Handler, o.Router, o.Playbooks = resp.Manager, resp.Handler, resp.Router, resp.Runner
		} else {
			// Incidents without notifications, playbooks or API.
			ro := analyzer.ResponderOptions{Conn: st.Conn(), Database: st.Database(), Logger: log, Registerer: reg}
			if engine != nil {
				ro.Pack = engine.Pack
			}
			mgr, _, err := analyzer.NewIncidentManager(ctx, ro, 0)
			if err != nil {
				return err
			}
			o.Sink = mgr
		}
	}
	if v := os.Getenv(crashEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s: %q is not a positive batch number", crashEnv, v)
		}
		log.Warn("test hook armed: SIGKILL before a commit", "batch", n)
		batches := 0
		o.BeforeCommit = func() {
			if batches++; batches == n {
				syscall.Kill(os.Getpid(), syscall.SIGKILL) //nolint:errcheck
				select {}
			}
		}
	}
	a, err = analyzer.New(o)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	sctx, stopStack := context.WithCancel(ctx)
	if engine != nil && c.Detect.RulesDir != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			engine.Watch(sctx, c.Detect.RulesDir, c.Detect.WatchInterval, func(err error) {
				if err == nil && groups != nil {
					groups.Replace(engine.Pack()) // same pack in both roles
				}
			})
		}()
	}
	if !c.Rollup.Disabled {
		sealer := rollup.New(st.Conn(), st.Database(), c.Rollup, log)
		wg.Add(1)
		go func() { defer wg.Done(); sealer.Run(sctx) }()
	}
	if resp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := resp.Run(sctx); err != nil {
				log.Error("incident response stopped", "err", err)
			}
		}()
	}
	err = a.Run(ctx)
	stopStack()
	wg.Wait()
	if err != nil {
		return err
	}
	log.Info("analyzer stopped")
	return nil
}
