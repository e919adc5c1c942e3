package notify_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/notify"
)

// TestSecurityCRLFTowardWebhooks: CR/LF and a forged header line in every
// text of an incident a sender influences (tool, server, agent, session,
// user, summary, evidence) reach no receiver as a header or a split
// request: each request carries only mcpwatch's own headers, and the text
// arrives verbatim inside the JSON body.
func TestSecurityCRLFTowardWebhooks(t *testing.T) {
	store, _ := incidenttest.Store(t)
	hook, slack, pd, am := newCapture(t), newCapture(t), newCapture(t), newCapture(t)
	t.Setenv("TEST_PD_KEY", "R0UTINGKEY0123456789012345678901")
	n, err := notify.New(notify.Config{
		DataDir: t.TempDir(),
		Receivers: []notify.ReceiverConfig{
			{Name: "hook", Type: notify.TypeWebhook, URL: hook.srv.URL + "/hook"},
			{Name: "slack", Type: notify.TypeSlack, URL: slack.srv.URL + "/services/T/B/X"},
			{Name: "pd", Type: notify.TypePagerDuty, URL: pd.srv.URL + "/v2/enqueue", Secret: notify.Secret{Env: "TEST_PD_KEY"}},
			{Name: "am", Type: notify.TypeAlertmanager, URL: am.srv.URL},
		},
		Routes: []notify.Route{{Name: "all", Receivers: []string{"hook", "slack", "pd", "am"}}},
	}, notify.Options{Recorder: notify.RecorderFunc(store.InsertActions)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	const evil = "x\r\nX-Injected: yes\r\n\r\nPOST /admin HTTP/1.1\r\nHost: evil\n"
	inc, fs := sampleIncident()
	inc.ToolName, inc.ServerName, inc.AgentID, inc.SessionKey, inc.UserID = "tool"+evil, "srv"+evil, "agent"+evil, "sess"+evil, "user"+evil
	inc.Summary, inc.Title = "summary"+evil, "title"+evil
	fs[0].Evidence = `{"path":"` + strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(evil) + `"}`
	n.IncidentChanged(context.Background(), incident.Change{Kind: incident.ChangeOpened, Incident: inc, Findings: fs})
	waitDelivered(t, n)

	own := []string{"Accept-Encoding", "Content-Length", "Content-Type", "Idempotency-Key", "User-Agent"}
	for name, c := range map[string]*capture{"webhook": hook, "slack": slack, "pagerduty": pd, "alertmanager": am} {
		reqs := c.all()
		if len(reqs) != 1 {
			t.Fatalf("%s got %d requests (a split request would be more)", name, len(reqs))
		}
		r := reqs[0]
		var keys []string
		for k, vs := range r.header {
			keys = append(keys, k)
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Errorf("%s header %s = %q", name, k, v)
				}
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, own) {
			t.Errorf("%s headers %v, want %v", name, keys, own)
		}
		if r.header.Get("X-Injected") != "" {
			t.Errorf("%s: injected header arrived", name)
		}
		var body any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("%s body is not JSON: %v", name, err)
		}
		if !strings.Contains(string(r.body), `X-Injected: yes\r\n`) {
			t.Errorf("%s body lost the text or did not escape it: %s", name, r.body)
		}
	}
	// The webhook carries each field verbatim.
	var p struct {
		Incident map[string]any `json:"incident"`
	}
	if err := json.Unmarshal(hook.all()[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Incident["tool_name"] != inc.ToolName || p.Incident["summary"] != inc.Summary || p.Incident["agent_id"] != inc.AgentID {
		t.Errorf("webhook incident %v", p.Incident)
	}
}
