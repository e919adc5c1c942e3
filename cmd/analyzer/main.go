// Command analyzer consumes mcpwatch's Kafka topic into ClickHouse, runs
// the detections and serves the admin endpoints (docs/analyzer.md).
//
//	analyzer [run] [flags]   consume (default; migrates first unless migrate_on_start: false)
//	analyzer migrate [flags] apply the ClickHouse migrations and exit
//	analyzer seal [flags]    seal every closed minute of the calls rollup once and exit
//	analyzer rules ...       rule tooling (rules.go)
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// subcommands maps `analyzer <name> args...` to its implementation, which
// returns the exit code. Other files of this package register theirs in
// init(), e.g. subcommands["rules"] = rulesMain.
var subcommands = map[string]func(args []string) int{}

func init() {
	subcommands["run"] = runMain
	subcommands["migrate"] = migrateMain
	subcommands["seal"] = sealMain
}

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage()
		return 0
	}
	fn, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "analyzer: unknown command %q\n", name)
		usage()
		return 2
	}
	return fn(args)
}

func usage() {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: analyzer [%s] [flags]   (default: run; `analyzer <command> -h` for flags)\n", strings.Join(names, "|"))
}
