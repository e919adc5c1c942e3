// Command gpx_mcpwatch is the mcpwatch Grafana app plugin backend; Grafana
// starts it through hashicorp/go-plugin.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/app"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/pkg/plugin"
)

func main() {
	if err := app.Manage(plugin.ID, plugin.NewApp, app.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("cannot serve plugin", "err", err.Error())
		os.Exit(1)
	}
}
