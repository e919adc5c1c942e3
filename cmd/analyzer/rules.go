package main

import (
	"os"

	"github.com/mcpwatch/mcpwatch/internal/detect/rulecmd"
)

func init() { subcommands["rules"] = rulesMain }

// rulesMain runs `analyzer rules test|lint|eval [flags] [paths...]`
// (default path: detections).
func rulesMain(args []string) int { return rulecmd.Main(args, os.Stdout, os.Stderr) }
