package plugin

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// TestBacktestForwardedToAnalyzer: an editor's backtest goes to the
// analyzer with the configured token, the Grafana login and the body as
// sent, and the report comes back as is; viewers are refused before the
// analyzer is asked.
func TestBacktestForwardedToAnalyzer(t *testing.T) {
	stub := newAnalyzerStub(t, "tok-123")
	a, err := New(Settings{AnalyzerURL: stub.srv.URL, AnalyzerToken: "tok-123"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Dispose()
	body := `{"rule_yaml":"id: mcp-x\n","since":"30d","tenant":"acme"}`
	code, b := callResource(t, a, http.MethodPost, "rules/backtest", &backend.User{Login: "vera", Role: "Viewer"}, body)
	if code != http.StatusForbidden || len(stub.calls) != 0 {
		t.Fatalf("viewer: %d %s, %d analyzer calls", code, b, len(stub.calls))
	}
	code, b = callResource(t, a, http.MethodPost, "rules/backtest", &backend.User{Login: "alice", Role: "Editor"}, body)
	if code != http.StatusOK {
		t.Fatalf("editor: %d %s", code, b)
	}
	var rep struct {
		RuleID string `json:"rule_id"`
		Diff   struct {
			Both int `json:"both"`
		} `json:"diff"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.RuleID != "mcp-x" || rep.Diff.Both != 2 {
		t.Fatalf("report %s (%v)", b, err)
	}
	c := stub.last()
	if c.Path != "/api/v1/rules/backtest" || c.Auth != "Bearer tok-123" || c.Actor != "alice" || c.Body["since"] != "30d" || c.Body["rule_yaml"] != "id: mcp-x\n" {
		t.Errorf("analyzer got %+v", c)
	}
}
