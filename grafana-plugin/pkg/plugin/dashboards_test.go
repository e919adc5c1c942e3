package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"gopkg.in/yaml.v3"
)

// The repository's dashboards/ (provisioned JSON) are checked here, in the
// plugin module, because their queries run through the plugin's query code.
const dashboardsDir = "../../../dashboards"

var dsVarRe = regexp.MustCompile(`^\$\{?datasource\}?$`)

// checkDatasourceRefs walks the JSON and reports every "datasource" value
// that is not the ${datasource} variable (the variable's own definition,
// type "datasource" in templating, has no "datasource" key).
func checkDatasourceRefs(file, path string, v any) []string {
	var errs []string
	errorf := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := path + "." + k
			if k == "datasource" {
				switch ds := c.(type) {
				case string:
					if !dsVarRe.MatchString(ds) {
						errorf("%s: %s = %q is not the ${datasource} variable", file, p, ds)
					}
				case map[string]any:
					uid, _ := ds["uid"].(string)
					if !dsVarRe.MatchString(uid) {
						errorf("%s: %s.uid = %q is not the ${datasource} variable", file, p, uid)
					}
					if typ, ok := ds["type"].(string); ok && typ != "mcpwatch-mcpwatch-datasource" {
						errorf("%s: %s.type = %q", file, p, typ)
					}
				case nil:
					errorf("%s: %s is null (would use the default data source)", file, p)
				default:
					errorf("%s: %s has unexpected type %T", file, p, c)
				}
			}
			errs = append(errs, checkDatasourceRefs(file, p, c)...)
		}
	case []any:
		for i, c := range x {
			errs = append(errs, checkDatasourceRefs(file, fmt.Sprintf("%s[%d]", path, i), c)...)
		}
	}
	return errs
}

func TestDatasourceRefCheckCatchesHardcodedUIDs(t *testing.T) {
	bad := map[string]string{
		"uid":     `{"panels":[{"datasource":{"type":"mcpwatch-mcpwatch-datasource","uid":"P1234"}}]}`,
		"name":    `{"panels":[{"targets":[{"datasource":"mcpwatch"}]}]}`,
		"null":    `{"panels":[{"datasource":null}]}`,
		"foreign": `{"panels":[{"datasource":{"type":"prometheus","uid":"${datasource}"}}]}`,
	}
	for name, doc := range bad {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if errs := checkDatasourceRefs(name, "$", v); len(errs) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	var ok any
	_ = json.Unmarshal([]byte(`{"panels":[{"datasource":{"type":"mcpwatch-mcpwatch-datasource","uid":"${datasource}"},"targets":[{"datasource":"$datasource"}]}]}`), &ok)
	if errs := checkDatasourceRefs("ok", "$", ok); len(errs) != 0 {
		t.Errorf("variables rejected: %v", errs)
	}
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Time       struct{ From, To string }
	Templating struct {
		List []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Query   any    `json:"query"`
			Current struct {
				Value any `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int               `json:"id"`
	Title   string            `json:"title"`
	Type    string            `json:"type"`
	Targets []json.RawMessage `json:"targets"`
	Panels  []panel           `json:"panels"` // collapsed rows
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

var relRe = regexp.MustCompile(`^now(?:-(\d+)([mhd]))?$`)

func relTime(now time.Time, s string) (time.Time, bool) {
	m := relRe.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	if m[1] == "" {
		return now, true
	}
	d, _ := time.ParseDuration(m[1] + map[string]string{"m": "m", "h": "h", "d": "h"}[m[2]])
	if m[2] == "d" {
		d *= 24
	}
	return now.Add(-d), true
}

func TestDashboards(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 dashboards in %s, got %v (%v)", dashboardsDir, files, err)
	}
	fx := seeded(t, Settings{})
	uids := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw any
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, e := range checkDatasourceRefs(name, "$", raw) {
			t.Error(e)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.UID == "" || len(d.UID) > 40 || d.Title == "" || !strings.HasPrefix(d.Title, "mcpwatch") {
			t.Errorf("%s: uid %q title %q", name, d.UID, d.Title)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q also used by %s", name, d.UID, other)
		}
		uids[d.UID] = name

		vars := map[string]string{}
		hasDSVar := false
		for _, v := range d.Templating.List {
			if v.Type == "datasource" {
				hasDSVar = v.Name == "datasource" && v.Query == "mcpwatch-mcpwatch-datasource"
				continue
			}
			s, _ := v.Current.Value.(string)
			vars[v.Name] = s
		}
		if !hasDSVar {
			t.Errorf("%s: no ${datasource} variable of type mcpwatch-mcpwatch-datasource", name)
		}
		// The dashboard's own default range, anchored at the seed's newest minute.
		now := fx.sum.Base.Add(time.Minute)
		from, ok1 := relTime(now, d.Time.From)
		to, ok2 := relTime(now, d.Time.To)
		if !ok1 || !ok2 {
			t.Fatalf("%s: unsupported time range %+v", name, d.Time)
		}
		panels := flatten(d.Panels)
		if len(panels) == 0 {
			t.Errorf("%s: no panels", name)
		}
		for _, p := range panels {
			if len(p.Targets) == 0 && p.Type != "row" {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			var qs []backend.DataQuery
			for _, tg := range p.Targets {
				s := string(tg)
				for k, v := range vars { // what Grafana's template service does before the query runs
					s = strings.ReplaceAll(s, "${"+k+"}", v)
					s = strings.ReplaceAll(s, "$"+k, v)
				}
				var head struct {
					RefID     string `json:"refId"`
					QueryType string `json:"queryType"`
				}
				if err := json.Unmarshal([]byte(s), &head); err != nil {
					t.Fatalf("%s: panel %q: %v", name, p.Title, err)
				}
				if strings.Contains(strings.ReplaceAll(s, `"${datasource}"`, ""), `"$`) {
					t.Errorf("%s: panel %q: unresolved variable in %s", name, p.Title, s)
				}
				qs = append(qs, backend.DataQuery{RefID: head.RefID, QueryType: head.QueryType, TimeRange: backend.TimeRange{From: from, To: to}, JSON: json.RawMessage(s)})
			}
			resp, err := fx.app.QueryData(context.Background(), &backend.QueryDataRequest{Queries: qs})
			if err != nil {
				t.Fatalf("%s: panel %q: %v", name, p.Title, err)
			}
			for _, q := range qs {
				r, ok := resp.Responses[q.RefID]
				if !ok || r.Error != nil {
					t.Errorf("%s: panel %q query %s: %v", name, p.Title, q.RefID, r.Error)
					continue
				}
				if len(r.Frames) == 0 || r.Frames[0].Rows() == 0 {
					t.Errorf("%s: panel %q query %s (%s) returned no rows", name, p.Title, q.RefID, q.QueryType)
				}
				if p.Type == "nodeGraph" && (len(r.Frames) != 2 || r.Frames[1].Rows() == 0) {
					t.Errorf("%s: node graph panel %q needs nodes and edges frames", name, p.Title)
				}
			}
		}
	}
}

func TestProvisioningYAML(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(dashboardsDir, "provisioning", "*.yaml"))
	if len(files) < 3 {
		t.Fatalf("want dashboards, datasources and plugins provisioning files, got %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			APIVersion int              `yaml:"apiVersion"`
			Providers  []map[string]any `yaml:"providers"`
			Apps       []map[string]any `yaml:"apps"`
			Sources    []map[string]any `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.APIVersion != 1 || len(v.Providers)+len(v.Apps)+len(v.Sources) == 0 {
			t.Errorf("%s: %+v", f, v)
		}
		for _, a := range v.Apps {
			if a["type"] != ID {
				t.Errorf("%s: app type %v", f, a["type"])
			}
		}
		for _, s := range v.Sources {
			if s["type"] != "mcpwatch-mcpwatch-datasource" {
				t.Errorf("%s: data source type %v", f, s["type"])
			}
		}
	}
}
