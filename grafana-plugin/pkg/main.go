// Command gpx_mcpwatch is the mcpwatch Grafana plugin backend; Grafana
// starts it through hashicorp/go-plugin, once for the app and once for
// the nested data source (both plugin.json files name this executable).
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/backend/tracing"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/pkg/plugin"
)

func main() {
	// What app.Manage does, with a handler that serves both plugin ids.
	backend.SetupPluginEnvironment(plugin.ID)
	if err := backend.SetupTracer(plugin.ID, tracing.Opts{}); err != nil {
		log.DefaultLogger.Error("cannot set up tracing", "err", err.Error())
		os.Exit(1)
	}
	h := plugin.NewHandler()
	if err := backend.Manage(plugin.ID, backend.ServeOpts{QueryDataHandler: h, CallResourceHandler: h, CheckHealthHandler: h}); err != nil {
		log.DefaultLogger.Error("cannot serve plugin", "err", err.Error())
		os.Exit(1)
	}
}
