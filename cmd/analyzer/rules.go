package main

import (
	"os"

	"github.com/mcpwatch/mcpwatch/internal/detect/rulecmd"
)

func init() { subcommands["rules"] = rulesMain }

// rulesMain runs `analyzer rules test|lint|eval [flags] [paths...]`
// (default path: detections) and `analyzer rules backtest` (backtest.go:
// it needs the analyzer's config for ClickHouse and the deployed pack).
func rulesMain(args []string) int {
	if len(args) > 0 && args[0] == "backtest" {
		return backtestMain(args[1:])
	}
	return rulecmd.Main(args, os.Stdout, os.Stderr)
}
