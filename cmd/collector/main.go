// Command collector receives MCP telemetry over OTLP (gRPC :4317, HTTP
// :4318), normalizes it into canonical audit events, redacts secrets and
// produces them to Kafka (one agent's events of a request share a record),
// answering senders only after Kafka
// acknowledged their records. See docs/collector.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mcpwatch/mcpwatch/internal/collector"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "collector:", err)
		os.Exit(1)
	}
}

// run runs the collector until ctx ends (SIGTERM/SIGINT in main), then
// shuts down gracefully.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	configPath := fs.String("config", os.Getenv("MCPWATCH_COLLECTOR_CONFIG"), "YAML config file (env MCPWATCH_COLLECTOR_CONFIG)")
	embedded := fs.Bool("embedded-kafka", false, "start an in-process Kafka (kfake) for local use and produce to it")
	embeddedDir := fs.String("embedded-kafka-dir", "", "data directory of the embedded Kafka (default: in memory)")
	embeddedPort := fs.Int("embedded-kafka-port", 9092, "port of the embedded Kafka on 127.0.0.1 (0 = any free port)")
	checkOnly := fs.Bool("check-config", false, "load and validate the config, then exit")
	overrides := map[string]string{}
	for _, k := range collector.ConfigKeys() {
		key := k[0]
		fs.Func(key, fmt.Sprintf("override config key %s (%s; env %s)", key, k[1], collector.EnvName(key)), func(v string) error {
			overrides[key] = v
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := collector.LoadConfig(*configPath, os.Environ(), overrides)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)

	var cluster *kfake.Cluster
	if *embedded {
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*embeddedPort)}
		if *embeddedDir != "" {
			opts = append(opts, kfake.DataDir(*embeddedDir))
		}
		cluster, err = kfake.NewCluster(opts...)
		if err != nil {
			return fmt.Errorf("cannot start embedded kafka: %w", err)
		}
		defer cluster.Close()
		cfg.Kafka.Brokers = cluster.ListenAddrs()
		log.Warn("embedded kafka (kfake) started: for local use only", "brokers", strings.Join(cfg.Kafka.Brokers, ","), "dir", *embeddedDir)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	if *checkOnly {
		fmt.Fprintln(stdout, "config ok")
		return nil
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.Runtime.GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && cfg.Runtime.MemoryLimitBytes > 0 {
		debug.SetMemoryLimit(cfg.Runtime.MemoryLimitBytes)
	}
	c, err := collector.New(cfg, log)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	log.Info("collector started", "otlp_http", c.HTTPAddr(), "otlp_grpc", c.GRPCAddr(), "admin", c.AdminAddr(),
		"topic", cfg.Kafka.Topic, "brokers", strings.Join(cfg.Kafka.Brokers, ","))
	<-ctx.Done()
	log.Info("shutting down: no new requests; finishing requests in flight and flushing Kafka")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := c.Shutdown(sctx); err != nil {
		return fmt.Errorf("cannot shut down cleanly: %w", err)
	}
	log.Info("collector stopped")
	return nil
}

func newLogger(c collector.LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
