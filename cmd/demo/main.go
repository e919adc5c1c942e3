// Command demo runs mcpwatch end to end on this machine: ClickHouse, an
// embedded Kafka, the collector and the analyzer on free local ports; it
// replays a scenario of agent traffic with embedded attacks over OTLP and
// prints what mcpwatch found. `make demo` runs it after installing what it
// needs. With --keep it stays up until Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpwatch/mcpwatch/internal/demo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "stay up after the report until Ctrl-C (explore the API, ClickHouse, Kafka)")
	seed := fs.Int64("seed", 1, "scenario seed")
	dir := fs.String("dir", "", "directory for data, configs and logs (default: a temp dir, removed at the end)")
	rows := fs.Int("rows", 15, "rows of the calls table")
	verbose := fs.Bool("v", false, "log progress in detail")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// A closed stdout (e.g. `| head`) must not kill the demo before it
	// stopped what it started.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	s, err := demo.Start(ctx, demo.Options{Dir: *dir, Seed: *seed, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		log.Info("stopping everything")
		s.Close()
		log.Info("stopped; nothing left running")
	}()
	r, err := s.Run(ctx, *seed)
	if r != nil {
		r.Print(os.Stdout, s, *rows)
	}
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("\nStaying up (--keep). Press Ctrl-C to stop.")
		<-ctx.Done()
	}
	return nil
}
