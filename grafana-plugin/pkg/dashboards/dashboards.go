// Package dashboards defines mcpwatch's provisioned Grafana dashboards as
// code, with the Grafana Foundation SDK. cmd/dashgen writes them to the
// repository's dashboards/ directory; TestGeneratedDashboardsAreCurrent
// fails when the committed JSON differs from what this code generates.
package dashboards

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/nodegraph"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// File is one generated dashboard: its file name under dashboards/ and
// its JSON.
type File struct {
	Name string
	JSON []byte
}

// All builds every dashboard, in file-name order.
func All() ([]File, error) {
	builders := []struct {
		name string
		b    *dashboard.DashboardBuilder
	}{
		{"agent-behaviour.json", agentBehaviour()},
		{"incidents.json", incidents()},
		{"overview.json", overview()},
		{"tool-inventory.json", toolInventory()},
	}
	out := make([]File, 0, len(builders))
	for _, d := range builders {
		built, err := d.b.Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.name, err)
		}
		// Panel ids in layout order, stable across generations (links
		// and Grafana's viewPanel= URLs use them).
		for i, p := range built.Panels {
			if p.Panel != nil {
				id := uint32(i + 1)
				p.Panel.Id = &id
			}
		}
		js, err := json.MarshalIndent(built, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.name, err)
		}
		out = append(out, File{Name: d.name, JSON: append(js, '\n')})
	}
	return out, nil
}

// base is what every mcpwatch dashboard shares: uid, tags, UTC, the last
// 6 hours refreshed every minute, a shared crosshair, and the data source
// and tenant variables (every query is scoped to $tenant).
func base(uid, title, tag string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Tags([]string{"mcpwatch", tag}).
		Timezone(common.TimeZoneUtc).
		Time("now-6h", "now").
		Refresh("1m").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Editable().
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("mcpwatch data source").
			Type(PluginID)).
		WithVariable(textbox("tenant", "Tenant (empty = all you may read)"))
}

func textbox(name, label string) *dashboard.TextBoxVariableBuilder {
	empty := ""
	return dashboard.NewTextBoxVariableBuilder(name).Label(label).DefaultValue(dashboard.StringOrMap{String: &empty})
}

func calls(title string, q *QueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Datasource(*datasourceRef()).WithTarget(q).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).
			DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderNone))
}

func tableOf(title string, q *QueryBuilder) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Datasource(*datasourceRef()).WithTarget(q).Filterable(true)
}

func at(x, y, w, h uint32) dashboard.GridPos {
	return dashboard.GridPos{X: x, Y: y, W: w, H: h}
}

func overview() *dashboard.DashboardBuilder {
	return base("mcpwatch-overview", "mcpwatch / Overview", "overview").
		WithPanel(calls("Tool calls, errors and denials", NewQuery("calls_over_time").Tenant("$tenant")).
			GridPos(at(0, 0, 16, 8))).
		WithPanel(calls("Error + denial rate", NewQuery("calls_over_time").Tenant("$tenant")).
			Unit("percentunit").GridPos(at(16, 0, 8, 8))).
		WithPanel(tableOf("Top agents", NewQuery("top_agents").Tenant("$tenant").Limit(10)).
			GridPos(at(0, 8, 12, 9))).
		WithPanel(tableOf("Top tools", NewQuery("top_tools").Tenant("$tenant").Limit(10)).
			GridPos(at(12, 8, 12, 9))).
		WithPanel(tableOf("Open incidents", NewQuery("incidents").Tenant("$tenant").Status("open")).
			GridPos(at(0, 17, 24, 8)))
}

func incidents() *dashboard.DashboardBuilder {
	return base("mcpwatch-incidents", "mcpwatch / Incidents", "incidents").
		WithVariable(textbox("status", "Status (open, acknowledged, resolved, suppressed; empty = all)")).
		WithVariable(textbox("severity", "Severity (empty = all)")).
		WithPanel(tableOf("Incidents", NewQuery("incidents").Tenant("$tenant").Status("$status").Severity("$severity").Limit(500)).
			GridPos(at(0, 0, 24, 10))).
		WithPanel(tableOf("Findings", NewQuery("findings").Tenant("$tenant").Limit(500)).
			GridPos(at(0, 10, 24, 10))).
		WithPanel(calls("Failed and denied calls", NewQuery("calls_over_time").Tenant("$tenant")).
			GridPos(at(0, 20, 24, 8)))
}

func agentBehaviour() *dashboard.DashboardBuilder {
	return base("mcpwatch-agent-behaviour", "mcpwatch / Agent behaviour", "agents").
		WithVariable(textbox("agent", "Agent id (empty = all)")).
		WithPanel(calls("Calls for $agent", NewQuery("calls_over_time").Tenant("$tenant").Agent("$agent")).
			GridPos(at(0, 0, 24, 8))).
		WithPanel(nodegraph.NewPanelBuilder().Title("Agent → server → tool").Datasource(*datasourceRef()).
			WithTarget(NewQuery("agent_graph").Tenant("$tenant").Agent("$agent")).
			GridPos(at(0, 8, 24, 12))).
		WithPanel(tableOf("Tools used", NewQuery("top_tools").Tenant("$tenant").Agent("$agent").Limit(50)).
			GridPos(at(0, 20, 12, 9))).
		WithPanel(tableOf("Findings", NewQuery("findings").Tenant("$tenant").Agent("$agent")).
			GridPos(at(12, 20, 12, 9)))
}

func toolInventory() *dashboard.DashboardBuilder {
	return base("mcpwatch-tool-inventory", "mcpwatch / Tool inventory", "tools").
		WithVariable(textbox("server", "MCP server (empty = all)")).
		WithPanel(tableOf("Tool usage", NewQuery("top_tools").Tenant("$tenant").Server("$server").Limit(200)).
			GridPos(at(0, 0, 24, 10))).
		WithPanel(tableOf("Tool definition changes", NewQuery("tool_changes").Tenant("$tenant").Server("$server")).
			GridPos(at(0, 10, 24, 10))).
		WithPanel(calls("Calls to $server", NewQuery("calls_over_time").Tenant("$tenant").Server("$server")).
			GridPos(at(0, 20, 24, 8)))
}
