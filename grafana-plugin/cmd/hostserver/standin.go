package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// standin stands in for the analyzer's incident API (internal/api in the
// root module, docs/openapi.yaml) in the browser tests: the plugin module
// must not depend on the root module. It checks the bearer token and the
// X-Mcpwatch-Actor header and records changes the way the analyzer does —
// a new incident version row, an approval row in actions — so the pages
// show the change read back from ClickHouse.
type standin struct {
	conn  driver.Conn
	db    string
	token string
}

const incidentStatusEnum = "Enum8('open' = 1, 'acknowledged' = 2, 'resolved' = 3, 'suppressed' = 4)"

func (s *standin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /api/v1/incidents/{id}", s.auth(func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, http.StatusOK, map[string]any{"incident": map[string]string{"incident_id": r.PathValue("id")}})
	}))
	mux.HandleFunc("POST /api/v1/incidents/{id}/{action}", s.auth(s.incidentAction))
	mux.HandleFunc("POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/{decision}", s.auth(s.stepDecision))
	mux.HandleFunc("GET /api/v1/rules", s.auth(s.rules))
	mux.HandleFunc("POST /api/v1/rules/backtest", s.auth(s.backtest))
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *standin) auth(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid token"})
			return
		}
		actor := r.Header.Get("X-Mcpwatch-Actor")
		if actor == "" && r.Method == http.MethodPost {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "X-Mcpwatch-Actor is required"})
			return
		}
		h(w, r, actor)
	}
}

func (s *standin) incidentAction(w http.ResponseWriter, r *http.Request, actor string) {
	status := map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[r.PathValue("action")]
	if status == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported action"})
		return
	}
	var body struct {
		Note string `json:"note"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	id := r.PathValue("id")
	q := fmt.Sprintf(`INSERT INTO %[1]s.incidents (incident_id, version, tenant, rule_id, rule_title, group_key, title, summary, status, severity, tags,
  finding_count, first_seen, last_seen, agent_id, user_id, session_key, server_name, tool_name, assignee, suppressed_until, updated_by, note, created_at, updated_at)
SELECT incident_id, version + 1, tenant, rule_id, rule_title, group_key, title, summary, CAST(? AS %[2]s), severity, tags,
  finding_count, first_seen, last_seen, agent_id, user_id, session_key, server_name, tool_name, assignee, suppressed_until, ?, ?, created_at, now()
FROM %[1]s.incidents FINAL WHERE incident_id = ?`, s.db, incidentStatusEnum)
	if err := s.conn.Exec(r.Context(), q, status, actor, body.Note, id); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"incident_id": id, "status": status, "updated_by": actor})
}

func (s *standin) stepDecision(w http.ResponseWriter, r *http.Request, actor string) {
	outcome := map[string]string{"approve": "approved", "deny": "denied"}[r.PathValue("decision")]
	if outcome == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported decision"})
		return
	}
	id, run, step := r.PathValue("id"), r.PathValue("run"), r.PathValue("step")
	detail, _ := json.Marshal(map[string]string{"run_id": run})
	b, err := s.conn.PrepareBatch(r.Context(), "INSERT INTO "+s.db+".actions (action_id, ts, tenant, incident_id, kind, target, playbook, step, attempt, outcome, actor, detail, idempotency_key)")
	if err == nil {
		err = b.Append(fmt.Sprintf("approval-%d", time.Now().UnixNano()), time.Now().UTC(), "default", id, "approval", "", "contain-agent", step, uint32(1), outcome, actor, string(detail), run+"/"+step+"/approval")
	}
	if err == nil {
		err = b.Send()
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"run_id": run, "step": step, "status": outcome})
}

// rules lists the seed's rules (those with findings) as the analyzer's
// GET /api/v1/rules does, each with a small rule file.
func (s *standin) rules(w http.ResponseWriter, r *http.Request, _ string) {
	rows, err := s.conn.Query(r.Context(), "SELECT rule_id, any(rule_title), any(toString(severity)) FROM "+s.db+".findings GROUP BY rule_id ORDER BY rule_id")
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	defer rows.Close()
	out := []map[string]string{}
	for rows.Next() {
		var id, title, sev string
		if err := rows.Scan(&id, &title, &sev); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		out = append(out, map[string]string{"id": id, "title": title, "severity": sev, "kind": "match", "version": "v1",
			"yaml": fmt.Sprintf("id: %s\ntitle: %s\nseverity: %s\nstatus: stable\nkind: match\ncondition: event.method == \"tools/call\"\n", id, title, sev)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": out})
}

// backtest answers POST /api/v1/rules/backtest in the report's shape
// (docs/openapi.yaml): the events stored and, as findings in both
// versions, the seed's stored findings of the rule named in rule_yaml. The
// real replay is tested in the root module (internal/backtest, internal/api).
func (s *standin) backtest(w http.ResponseWriter, r *http.Request, _ string) {
	var body struct {
		RuleYAML string `json:"rule_yaml"`
		Since    string `json:"since"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.RuleYAML == "" || body.Since == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "rule_yaml and since are required"})
		return
	}
	var id string
	for _, line := range strings.Split(body.RuleYAML, "\n") {
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = strings.TrimSpace(v)
		}
	}
	var events uint64
	if err := s.conn.QueryRow(r.Context(), "SELECT uniqExact(event_id) FROM "+s.db+".events").Scan(&events); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	rows, err := s.conn.Query(r.Context(), "SELECT tenant, group_key, event_ids, ts, toString(severity), summary FROM "+s.db+".findings WHERE rule_id = ? ORDER BY ts", id)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	defer rows.Close()
	diff := []map[string]any{}
	groups := map[string]bool{}
	for rows.Next() {
		var tenant, group, sev, summary string
		var ids []string
		var ts time.Time
		if err := rows.Scan(&tenant, &group, &ids, &ts, &sev, &summary); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		last := ""
		if len(ids) > 0 {
			last = ids[len(ids)-1]
		}
		groups[tenant+"/"+group] = true
		diff = append(diff, map[string]any{"class": "both", "tenant": tenant, "group_key": group, "event_id": last, "ts": ts.UTC(), "severity": sev, "summary": summary})
	}
	side := map[string]any{"version": "v1", "kind": "match", "findings": len(diff), "groups": len(groups), "top_groups": []any{}}
	now := time.Now().UTC()
	writeJSON(w, http.StatusOK, map[string]any{"rule_id": id, "since": now.Add(-30 * 24 * time.Hour), "until": now, "events": events,
		"truncated": false, "elapsed_ms": 12, "new": side, "deployed": side,
		"diff": map[string]any{"only_new": 0, "only_deployed": 0, "both": len(diff), "rows": diff}})
}
