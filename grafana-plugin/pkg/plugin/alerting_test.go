package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// Grafana's alerting file provisioning format (apiVersion 1): the parts a
// rule needs to evaluate and route.
type provisionedAlerting struct {
	APIVersion int `yaml:"apiVersion"`
	Groups     []struct {
		OrgID    int64       `yaml:"orgId"`
		Name     string      `yaml:"name"`
		Folder   string      `yaml:"folder"`
		Interval string      `yaml:"interval"`
		Rules    []alertRule `yaml:"rules"`
	} `yaml:"groups"`
	ContactPoints []struct {
		OrgID     int64  `yaml:"orgId"`
		Name      string `yaml:"name"`
		Receivers []struct {
			UID                   string         `yaml:"uid"`
			Type                  string         `yaml:"type"`
			DisableResolveMessage bool           `yaml:"disableResolveMessage"`
			Settings              map[string]any `yaml:"settings"`
		} `yaml:"receivers"`
	} `yaml:"contactPoints"`
}

type alertRule struct {
	UID       string `yaml:"uid"`
	Title     string `yaml:"title"`
	Condition string `yaml:"condition"`
	Data      []struct {
		RefID             string `yaml:"refId"`
		RelativeTimeRange struct {
			From int64 `yaml:"from"`
			To   int64 `yaml:"to"`
		} `yaml:"relativeTimeRange"`
		DatasourceUID string         `yaml:"datasourceUid"`
		Model         map[string]any `yaml:"model"`
	} `yaml:"data"`
	NoDataState          string            `yaml:"noDataState"`
	ExecErrState         string            `yaml:"execErrState"`
	For                  string            `yaml:"for"`
	Labels               map[string]string `yaml:"labels"`
	Annotations          map[string]string `yaml:"annotations"`
	NotificationSettings *struct {
		Receiver string `yaml:"receiver"`
	} `yaml:"notification_settings"`
}

const alertingDir = dashboardsDir + "/provisioning/alerting"

func readProvisioning(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(alertingDir, name))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// provisionedRules parses alert-rules.yaml and checks what Grafana checks
// when it provisions it: every rule's condition and expression inputs name
// a refId of the rule, data source queries use the provisioned mcpwatch
// data source with a known query type, routing names a provisioned
// contact point.
func provisionedRules(t *testing.T) map[string]alertRule {
	t.Helper()
	var rules, cps provisionedAlerting
	readProvisioning(t, "alert-rules.yaml", &rules)
	readProvisioning(t, "contact-points.yaml", &cps)
	var dss struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	b, err := os.ReadFile(filepath.Join(dashboardsDir, "provisioning", "datasources.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &dss); err != nil || len(dss.Datasources) != 1 || dss.Datasources[0].Type != DataSourceID {
		t.Fatalf("datasources.yaml: %v %+v", err, dss)
	}
	dsUID := dss.Datasources[0].UID
	receivers := map[string]bool{}
	if cps.APIVersion != 1 {
		t.Errorf("contact-points.yaml: apiVersion %d", cps.APIVersion)
	}
	for _, cp := range cps.ContactPoints {
		for _, r := range cp.Receivers {
			if r.Type != "webhook" || !strings.HasSuffix(fmt.Sprint(r.Settings["url"]), "/api/v1/alerts/grafana") {
				t.Errorf("contact point %s: %s %v, want a webhook to the analyzer", cp.Name, r.Type, r.Settings["url"])
			}
		}
		receivers[cp.Name] = true
	}
	if rules.APIVersion != 1 || len(rules.Groups) == 0 {
		t.Fatalf("alert-rules.yaml: apiVersion %d, %d groups", rules.APIVersion, len(rules.Groups))
	}
	out := map[string]alertRule{}
	for _, g := range rules.Groups {
		if g.OrgID == 0 || g.Name == "" || g.Folder == "" || g.Interval == "" {
			t.Errorf("group %+v lacks orgId, name, folder or interval", g)
		}
		for _, r := range g.Rules {
			refs := map[string]bool{}
			for _, d := range r.Data {
				refs[d.RefID] = true
			}
			if r.UID == "" || r.Title == "" || !refs[r.Condition] {
				t.Errorf("rule %q: uid %q, condition %q not among %v", r.Title, r.UID, r.Condition, refs)
			}
			for _, d := range r.Data {
				if d.Model["refId"] != d.RefID {
					t.Errorf("rule %s: model refId %v != %s", r.UID, d.Model["refId"], d.RefID)
				}
				switch d.DatasourceUID {
				case "__expr__":
					if !refs[fmt.Sprint(d.Model["expression"])] {
						t.Errorf("rule %s: %s reads %v, not a refId of the rule", r.UID, d.RefID, d.Model["expression"])
					}
				case dsUID:
					if !slices.Contains(QueryTypes, fmt.Sprint(d.Model["queryType"])) || d.RelativeTimeRange.From <= d.RelativeTimeRange.To {
						t.Errorf("rule %s: query %s: type %v, range %+v", r.UID, d.RefID, d.Model["queryType"], d.RelativeTimeRange)
					}
				default:
					t.Errorf("rule %s: %s uses data source %q, want %q or __expr__", r.UID, d.RefID, d.DatasourceUID, dsUID)
				}
			}
			if r.NotificationSettings != nil && !receivers[r.NotificationSettings.Receiver] {
				t.Errorf("rule %s: routes to %q, which contact-points.yaml does not provision", r.UID, r.NotificationSettings.Receiver)
			}
			out[r.UID] = r
		}
	}
	return out
}

// evaluate does what Grafana alerting does with a rule at now: it sends
// the rule's data source queries to the data source's QueryData (the
// query model JSON as Grafana sends it, the relative time range resolved,
// intervalMs 1000 and maxDataPoints 43200 as Grafana's alert queries
// carry), then runs the reduce and threshold expressions over each
// labelled series. It returns the labels ("k=v,…") of the firing series
// and of every series evaluated.
func evaluate(t *testing.T, h backend.QueryDataHandler, pc backend.PluginContext, r alertRule, now time.Time) (firing, all []string) {
	t.Helper()
	results := map[string]map[string]float64{} // refId -> series labels -> value
	series := map[string][]*data.Field{}       // data source refId -> numeric fields
	for _, d := range r.Data {
		if d.DatasourceUID == "__expr__" {
			continue
		}
		model, err := json.Marshal(d.Model)
		if err != nil {
			t.Fatal(err)
		}
		q := backend.DataQuery{RefID: d.RefID, QueryType: fmt.Sprint(d.Model["queryType"]), JSON: model,
			Interval: time.Second, MaxDataPoints: 43200,
			TimeRange: backend.TimeRange{From: now.Add(-time.Duration(d.RelativeTimeRange.From) * time.Second), To: now.Add(-time.Duration(d.RelativeTimeRange.To) * time.Second)}}
		resp, err := h.QueryData(context.Background(), &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{q}})
		if err != nil {
			t.Fatalf("rule %s: %v", r.UID, err)
		}
		dr := resp.Responses[d.RefID]
		if dr.Error != nil {
			t.Fatalf("rule %s: query %s: %v", r.UID, d.RefID, dr.Error)
		}
		for _, fr := range dr.Frames {
			if fr.Meta == nil || fr.Meta.Type != data.FrameTypeTimeSeriesMulti {
				t.Fatalf("rule %s: frame %s is not a time series (multi) frame: %+v", r.UID, fr.Name, fr.Meta)
			}
			if len(fr.Fields) != 2 || fr.Fields[0].Type() != data.FieldTypeTime || !fr.Fields[1].Type().Numeric() || len(fr.Fields[1].Labels) == 0 {
				t.Fatalf("rule %s: frame %s is not [time, number{labels}]", r.UID, fr.Name)
			}
			series[d.RefID] = append(series[d.RefID], fr.Fields[1])
		}
	}
	// The expressions, in order (each reads an earlier refId).
	for _, d := range r.Data {
		if d.DatasourceUID != "__expr__" {
			continue
		}
		in := fmt.Sprint(d.Model["expression"])
		out := map[string]float64{}
		switch d.Model["type"] {
		case "reduce":
			for _, f := range series[in] {
				out[f.Labels.String()] = reduce(t, fmt.Sprint(d.Model["reducer"]), f)
			}
		case "threshold":
			conds, _ := d.Model["conditions"].([]any)
			if len(conds) != 1 {
				t.Fatalf("rule %s: %s: want one condition, got %v", r.UID, d.RefID, d.Model["conditions"])
			}
			ev := conds[0].(map[string]any)["evaluator"].(map[string]any)
			for k, v := range results[in] {
				out[k] = 0
				if threshold(t, fmt.Sprint(ev["type"]), ev["params"].([]any), v) {
					out[k] = 1
				}
			}
		default:
			t.Fatalf("rule %s: expression type %v is not evaluated by this test", r.UID, d.Model["type"])
		}
		results[d.RefID] = out
	}
	for k, v := range results[r.Condition] {
		all = append(all, k)
		if v != 0 {
			firing = append(firing, k)
		}
	}
	sort.Strings(firing)
	sort.Strings(all)
	return firing, all
}

// reduce is Grafana's reduce expression in its default (strict) mode.
func reduce(t *testing.T, reducer string, f *data.Field) float64 {
	t.Helper()
	var vs []float64
	for i := 0; i < f.Len(); i++ {
		v, err := f.FloatAt(i)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	switch reducer {
	case "sum":
		return sum
	case "mean":
		return sum / float64(len(vs))
	case "last":
		return vs[len(vs)-1]
	case "max":
		return slices.Max(vs)
	case "min":
		return slices.Min(vs)
	case "count":
		return float64(len(vs))
	}
	t.Fatalf("reducer %q is not evaluated by this test", reducer)
	return 0
}

// threshold is Grafana's threshold expression (NaN never fires).
func threshold(t *testing.T, typ string, params []any, v float64) bool {
	t.Helper()
	p := make([]float64, len(params))
	for i, x := range params {
		switch n := x.(type) {
		case int:
			p[i] = float64(n)
		case float64:
			p[i] = n
		default:
			t.Fatalf("threshold param %v (%T)", x, x)
		}
	}
	switch typ {
	case "gt":
		return v > p[0]
	case "lt":
		return v < p[0]
	case "within_range":
		return v > p[0] && v < p[1]
	case "outside_range":
		return v < p[0] || v > p[1]
	}
	t.Fatalf("threshold type %q is not evaluated by this test", typ)
	return false
}

// dataSourceContext is the plugin context Grafana sends with a query of a
// provisioned mcpwatch data source whose jsonData is jsonData.
func dataSourceContext(t *testing.T, db string, extra map[string]any) backend.PluginContext {
	t.Helper()
	jd := map[string]any{"clickhouseAddress": chAddr, "database": db}
	for k, v := range extra {
		jd[k] = v
	}
	b, err := json.Marshal(jd)
	if err != nil {
		t.Fatal(err)
	}
	return backend.PluginContext{OrgID: 1, PluginID: DataSourceID,
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{ID: 1, UID: "mcpwatch", Name: "mcpwatch", Type: DataSourceID, JSONData: b, Updated: time.Now()}}
}

// TestProvisionedAlertRulesEvaluate evaluates the provisioned alert rules
// as Grafana alerting does, against the backend data source over seeded
// ClickHouse data: the seed's calls end 3 h ago, then one agent gets a
// burst of mostly denied calls and another a burst of mostly allowed ones;
// a critical incident opens after the high one.
func TestProvisionedAlertRulesEvaluate(t *testing.T) {
	rules := provisionedRules(t)
	denial, ok1 := rules["mcpwatch-denial-rate-spike"]
	critical, ok2 := rules["mcpwatch-new-critical-incidents"]
	if !ok1 || !ok2 {
		t.Fatalf("provisioned rules %v lack the denial-rate and critical-incident rules", rules)
	}
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_alerts")
	now := time.Now().UTC()
	if _, err := seed.Seed(ctx, conn, db, now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	h := NewHandler()
	pc := dataSourceContext(t, db, nil)
	check := func(name string, r alertRule, pc backend.PluginContext, wantFiring, wantSeries []string) {
		t.Helper()
		firing, all := evaluate(t, h, pc, r, time.Now())
		if !slices.Equal(firing, wantFiring) || !slices.Equal(all, wantSeries) {
			t.Errorf("%s: firing %q of %q, want %q of %q", name, firing, all, wantFiring, wantSeries)
		}
	}
	check("denial rate, nothing in the last 10 minutes", denial, pc, nil, nil)
	check("critical incidents, none new", critical, pc, nil, []string{"severity=critical"})

	if err := seed.Burst(ctx, conn, db, "default", "agent-alpha", now.Add(-3*time.Minute), 10, 8); err != nil {
		t.Fatal(err)
	}
	if err := seed.Burst(ctx, conn, db, "default", "agent-bravo", now.Add(-3*time.Minute), 10, 1); err != nil {
		t.Fatal(err)
	}
	if err := seed.Incident(ctx, conn, db, "default", "inc-high-new", "high", now.Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("denial rate after the bursts", denial, pc, []string{"agent=agent-alpha"}, []string{"agent=agent-alpha", "agent=agent-bravo"})
	check("critical incidents, a new high one", critical, pc, nil, []string{"severity=critical"})
	if err := seed.Incident(ctx, conn, db, "default", "inc-critical-new", "critical", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("critical incidents, a new critical one", critical, pc, []string{"severity=critical"}, []string{"severity=critical"})

	// The same handler still answers the app's own requests.
	resp, err := h.QueryData(ctx, &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{OrgID: 1, PluginID: ID, AppInstanceSettings: &backend.AppInstanceSettings{JSONData: []byte(`{"clickhouseAddress":"` + chAddr + `","database":"` + db + `"}`), Updated: time.Now()}},
		Queries:       []backend.DataQuery{{RefID: "A", JSON: []byte(`{"queryType":"denial_rate"}`), TimeRange: backend.TimeRange{From: now.Add(-10 * time.Minute), To: now}}}})
	if err != nil || resp.Responses["A"].Error != nil || len(resp.Responses["A"].Frames) != 2 {
		t.Errorf("app QueryData through the handler: %v %+v", err, resp)
	}
}

// TestDataSourcePluginJSONIsABackendForAlerting: Grafana only offers a data
// source to alert rules when its plugin.json says backend and alerting, and
// starts the executable it names (here the app's, one directory up).
func TestDataSourcePluginJSONIsABackendForAlerting(t *testing.T) {
	var app, ds struct {
		ID         string `json:"id"`
		Backend    bool   `json:"backend"`
		Alerting   bool   `json:"alerting"`
		Executable string `json:"executable"`
	}
	for p, v := range map[string]any{"../../src/plugin.json": &app, "../../src/datasource/plugin.json": &ds} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if ds.ID != DataSourceID || !ds.Backend || !ds.Alerting || ds.Executable != "../"+app.Executable || app.ID != ID {
		t.Errorf("data source plugin.json %+v, app %+v", ds, app)
	}
}

// TestSecurityAlertQueriesTenantScoped: the data source's tenantAccess
// holds alert rule queries too. Grafana evaluates rules with no user, so
// they read the tenants of "default" and the org's entry: an org mapped to
// another tenant sees no series of "default" and fires nothing, an org
// mapped to "default" fires.
func TestSecurityAlertQueriesTenantScoped(t *testing.T) {
	rules := provisionedRules(t)
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_alerts_scope")
	now := time.Now().UTC()
	if err := seed.Burst(ctx, conn, db, "default", "agent-alpha", now.Add(-3*time.Minute), 10, 8); err != nil {
		t.Fatal(err)
	}
	if err := seed.Incident(ctx, conn, db, "default", "inc-critical-new", "critical", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	h := NewHandler()
	for i, c := range []struct {
		tenants               []string
		denials, criticalFire []string
	}{
		{[]string{"other"}, nil, nil},
		{[]string{"default"}, []string{"agent=agent-alpha"}, []string{"severity=critical"}},
	} {
		pc := dataSourceContext(t, db, map[string]any{"tenantAccess": map[string]any{"orgs": map[string]any{"1": c.tenants}}})
		pc.DataSourceInstanceSettings.ID, pc.DataSourceInstanceSettings.UID = int64(10+i), fmt.Sprintf("scoped-%d", i)
		if firing, all := evaluate(t, h, pc, rules["mcpwatch-denial-rate-spike"], time.Now()); !slices.Equal(firing, c.denials) || !slices.Equal(all, c.denials) {
			t.Errorf("org reading %v: denial rate firing %q of %q, want %q", c.tenants, firing, all, c.denials)
		}
		if firing, _ := evaluate(t, h, pc, rules["mcpwatch-new-critical-incidents"], time.Now()); !slices.Equal(firing, c.criticalFire) {
			t.Errorf("org reading %v: critical incidents firing %q, want %q", c.tenants, firing, c.criticalFire)
		}
	}
}
