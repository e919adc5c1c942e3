package plugin

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// The values query feeds the app's variables: the distinct agents, servers
// and tools of the calls in the time range, and nothing for an agent that
// filters to no call.
func TestQueryValuesListsTheSeedsDimensions(t *testing.T) {
	fx := seeded(t, Settings{})
	f := fx.scope()
	values := func(field, extra string) ([]string, error) {
		q := backend.DataQuery{RefID: "v", TimeRange: backend.TimeRange{From: f.From, To: f.To},
			JSON: []byte(`{"queryType":"values","field":"` + field + `"` + extra + `}`)}
		resp, err := fx.app.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{q}})
		if err != nil {
			return nil, err
		}
		r := resp.Responses["v"]
		if r.Error != nil {
			return nil, r.Error
		}
		var out []string
		for i := 0; i < r.Frames[0].Rows(); i++ {
			out = append(out, r.Frames[0].Fields[0].At(i).(string))
		}
		return out, nil
	}
	var agents []string
	for a := range fx.sum.CallsByAgent {
		agents = append(agents, a)
	}
	sort.Strings(agents)
	got, err := values("agent", "")
	if err != nil || !slices.Equal(got, agents) {
		t.Fatalf("agents = %v, %v; want %v", got, err, agents)
	}
	tools, err := values("tool", "")
	if err != nil || len(tools) == 0 || !slices.IsSorted(tools) {
		t.Fatalf("tools = %v, %v", tools, err)
	}
	none, err := values("tool", `,"agent":"no-such-agent"`)
	if err != nil || len(none) != 0 {
		t.Fatalf("tools of an unknown agent = %v, %v; want none", none, err)
	}
	if _, err := values("outcome", ""); err == nil {
		t.Fatal("a field that is not a variable was accepted")
	}
}
