// Command dashgen writes mcpwatch's Grafana dashboards (pkg/dashboards) to
// a directory, by default the repository's dashboards/:
//
//	cd grafana-plugin && go run ./cmd/dashgen            # writes ../dashboards
//	go run ./cmd/dashgen -out /tmp/x                      # elsewhere
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/pkg/dashboards"
)

func main() {
	out := flag.String("out", "../dashboards", "directory to write the dashboards to")
	flag.Parse()
	files, err := dashboards.All()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(*out, f.Name), f.JSON, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "dashgen:", err)
			os.Exit(1)
		}
		fmt.Println("dashgen: wrote", filepath.Join(*out, f.Name))
	}
}
