package dashboards

import (
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// PluginID is the mcpwatch data source's plugin id (src/datasource/plugin.json).
const PluginID = "mcpwatch-mcpwatch-datasource"

// Query is a target of the mcpwatch data source: the JSON the plugin's
// query code reads (pkg/plugin/datasource.go). The foundation SDK knows
// only core data sources; a custom query type is how it is extended.
type Query struct {
	RefId      string                   `json:"refId"`
	Hide       *bool                    `json:"hide,omitempty"`
	Datasource *dashboard.DataSourceRef `json:"datasource,omitempty"`
	QueryType  string                   `json:"queryType"`
	Tenant     string                   `json:"tenant,omitempty"`
	Agent      string                   `json:"agent,omitempty"`
	Server     string                   `json:"server,omitempty"`
	Tool       string                   `json:"tool,omitempty"`
	Status     string                   `json:"status,omitempty"`
	Severity   string                   `json:"severity,omitempty"`
	Rule       string                   `json:"rule,omitempty"`
	Limit      int                      `json:"limit,omitempty"`
}

// ImplementsDataqueryVariant marks Query as a data query for the SDK.
func (Query) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id, as the SDK's core queries give theirs.
func (Query) DataqueryType() string { return PluginID }

// Validate is called by the builders.
func (Query) Validate() error { return nil }

// Equals compares two queries by their JSON.
func (q Query) Equals(other variants.Dataquery) bool {
	o, ok := other.(Query)
	if !ok {
		return false
	}
	a, _ := json.Marshal(q)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// QueryBuilder builds a Query; it is what panel builders' WithTarget take.
type QueryBuilder struct{ q Query }

var _ cog.Builder[variants.Dataquery] = (*QueryBuilder)(nil)

// NewQuery starts a query of the given type (calls_over_time, top_agents,
// top_tools, incidents, findings, agent_graph, tool_changes) on the
// dashboard's ${datasource} variable.
func NewQuery(queryType string) *QueryBuilder {
	return &QueryBuilder{q: Query{RefId: "A", QueryType: queryType, Datasource: datasourceRef()}}
}

// Build implements cog.Builder.
func (b *QueryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }

// Tenant, Agent, Server, Tool, Status, Severity, Rule and Limit set the query's filters.
func (b *QueryBuilder) Tenant(v string) *QueryBuilder   { b.q.Tenant = v; return b }
func (b *QueryBuilder) Agent(v string) *QueryBuilder    { b.q.Agent = v; return b }
func (b *QueryBuilder) Server(v string) *QueryBuilder   { b.q.Server = v; return b }
func (b *QueryBuilder) Tool(v string) *QueryBuilder     { b.q.Tool = v; return b }
func (b *QueryBuilder) Status(v string) *QueryBuilder   { b.q.Status = v; return b }
func (b *QueryBuilder) Severity(v string) *QueryBuilder { b.q.Severity = v; return b }
func (b *QueryBuilder) Rule(v string) *QueryBuilder     { b.q.Rule = v; return b }
func (b *QueryBuilder) Limit(n int) *QueryBuilder       { b.q.Limit = n; return b }

func datasourceRef() *dashboard.DataSourceRef {
	typ, uid := PluginID, "${datasource}"
	return &dashboard.DataSourceRef{Type: &typ, Uid: &uid}
}
