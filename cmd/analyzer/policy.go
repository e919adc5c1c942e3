package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/profile"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

func init() {
	subcommands["policy"] = func(args []string) int { return policyMain(args, os.Stdout, os.Stderr) }
}

// policyMain runs `analyzer policy export [flags]`: learn the profile of an
// agent or a tenant from stored events and write it as a gateway policy
// (docs/profiles.md).
func policyMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(stderr, "usage: analyzer policy export --tenant T [--agent A] [--since 30d] [--format agentgateway|toolhive|json] [flags]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := policyExport(ctx, args[1:], stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "analyzer policy export: %v\n", err)
		return 1
	}
	return 0
}

func policyExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyzer policy export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("MCPWATCH_ANALYZER_CONFIG"), "YAML config file for the ClickHouse connection (env MCPWATCH_ANALYZER_CONFIG)")
	chAddr := fs.String("clickhouse-addr", "", "ClickHouse native addresses, comma separated (env MCPWATCH_CLICKHOUSE_ADDR)")
	chDB := fs.String("clickhouse-database", "", "ClickHouse database (env MCPWATCH_CLICKHOUSE_DATABASE)")
	tenant := fs.String("tenant", "", "tenant whose calls to learn from (required)")
	agent := fs.String("agent", "", `agent id; "" learns the whole tenant`)
	since := fs.String("since", "30d", "learn from calls of this long before --until (Go duration or days, e.g. 30d)")
	until := fs.String("until", "", "end of the learning range, RFC 3339 (default now)")
	format := fs.String("format", profile.FormatAgentgateway, "agentgateway (mcpAuthorization CEL rules), toolhive (permission profile of --server) or json (the profile)")
	identity := fs.String("identity", "", "agentgateway: CEL field naming the calling agent (e.g. jwt.sub); each rule then requires it to equal the agent id")
	server := fs.String("server", "", "toolhive: the MCP server the permission profile is for")
	out := fs.String("out", "", "write the policy to this file instead of stdout")
	maxRows := fs.Int("max-rows", 1_000_000, "bound on the distinct calls read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *tenant == "" {
		return fmt.Errorf("--tenant is required")
	}
	back, err := detect.ParseDuration(*since)
	if err != nil || back <= 0 {
		return fmt.Errorf("--since %q must be a positive duration such as 30d", *since)
	}
	to := time.Now().UTC()
	if *until != "" {
		if to, err = time.Parse(time.RFC3339, *until); err != nil {
			return fmt.Errorf("--until %q must be RFC 3339: %w", *until, err)
		}
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
	st, err := store.Open(ctx, c.ClickHouse)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := profile.Learn(ctx, st, profile.Query{Tenant: *tenant, Agent: *agent, From: to.Add(-back), To: to, MaxRows: *maxRows})
	if err != nil {
		return err
	}
	b, notes, err := profile.Export(p, *format, profile.ExportOptions{Identity: *identity, Server: *server})
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	if *out != "" {
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", *out, err)
		}
		return nil
	}
	_, err = stdout.Write(b)
	return err
}
