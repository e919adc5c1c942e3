package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// direct counts the calls (as the pages count them) matching cond over
// the fixture's events with plain SQL, independently of BlastRadius and of
// the redaction_sightings view.
func (fx *fixture) direct(t *testing.T, f Filter, cond string, args ...any) (calls uint64, agents []string) {
	t.Helper()
	q := fmt.Sprintf("SELECT uniqExact(%s), groupUniqArray(agent_id) FROM %s.events WHERE kind = 'message' AND %s AND ts >= toDateTime(?) AND ts <= toDateTime(?) AND %s",
		callKey, fx.db, counted, cond)
	if err := fx.app.store.conn.QueryRow(context.Background(), q, append([]any{f.from(), f.to()}, args...)...).Scan(&calls, &agents); err != nil {
		t.Fatal(err)
	}
	slices.Sort(agents)
	return calls, agents
}

func blastTotals(b BlastRadius) (calls uint64, agents []string) {
	for _, a := range b.Agents {
		calls += a.Calls
		agents = append(agents, a.AgentID)
	}
	slices.Sort(agents)
	return calls, agents
}

func TestBlastRadius(t *testing.T) {
	fx := seeded(t, Settings{})
	ctx := context.Background()
	f := fx.scope()
	exfilAgent := seed.Agents[0].ID // the seed's exfiltrating agent

	check := func(name string, subj BlastSubject, wantCalls uint64, wantAgents []string) BlastRadius {
		t.Helper()
		b, err := fx.app.store.BlastRadius(ctx, f, subj)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		calls, agents := blastTotals(b)
		if wantCalls == 0 {
			t.Fatalf("%s: the seed has no calls for this subject; the test would prove nothing", name)
		}
		if calls != wantCalls || !slices.Equal(agents, wantAgents) {
			t.Errorf("%s: %d calls by %v, want %d by %v", name, calls, agents, wantCalls, wantAgents)
		}
		var series uint64
		for _, p := range b.Series {
			series += p.Calls
		}
		if series != wantCalls {
			t.Errorf("%s: the series holds %d calls, want %d", name, series, wantCalls)
		}
		if want := min(int(wantCalls), 100); len(b.Calls) != want {
			t.Errorf("%s: %d calls listed, want %d", name, len(b.Calls), want)
		}
		for i := 1; i < len(b.Calls); i++ {
			if b.Calls[i].TsNs > b.Calls[i-1].TsNs {
				t.Errorf("%s: calls not newest first at %d", name, i)
				break
			}
		}
		return b
	}

	// A leaked private key: the read that returned it and the upload that
	// sent it, in one session of one agent.
	b := check("fingerprint 9f8e7d6c", BlastSubject{Fingerprint: "9f8e7d6c"}, 2, []string{exfilAgent})
	if len(b.Sessions) != 1 || b.Sessions[0].SessionKey != fx.sum.ExfilSession {
		t.Errorf("fingerprint 9f8e7d6c: sessions %+v, want only %s", b.Sessions, fx.sum.ExfilSession)
	}
	ids := []string{}
	for _, c := range b.Calls {
		ids = append(ids, c.EventID)
	}
	slices.Sort(ids)
	if want := slices.Sorted(slices.Values(fx.sum.ExfilEventIDs)); !slices.Equal(ids, want) {
		t.Errorf("fingerprint 9f8e7d6c: calls %v, want %v", ids, want)
	}

	// A key seen in many agents' arguments: the view agrees with a scan.
	marker := "%[REDACTED:aws_access_key:1a2b3c4d]%"
	calls, agents := fx.direct(t, f, "arguments LIKE ?", marker)
	check("fingerprint 1a2b3c4d", BlastSubject{Fingerprint: "1a2b3c4d"}, calls, agents)

	calls, agents = fx.direct(t, f, "server_name = 'filesystem' AND tool_name = 'read_file'")
	check("tool filesystem/read_file", BlastSubject{Server: "filesystem", Tool: "read_file"}, calls, agents)

	// The first definition of read_file was served until the poisoned one
	// appeared (seed: h-read-2 first seen 60 minutes before the base).
	until := fx.sum.Base.Add(-60 * time.Minute)
	calls, agents = fx.direct(t, Filter{From: f.From, To: until}, "server_name = 'filesystem' AND tool_name = 'read_file'")
	b = check("definition h-read-1", BlastSubject{Server: "filesystem", Tool: "read_file", DefinitionHash: "h-read-1"}, calls, agents)
	if !b.To.Equal(until) {
		t.Errorf("definition h-read-1: searched until %v, want %v (the next definition's first sighting)", b.To, until)
	}
	calls, agents = fx.direct(t, Filter{From: until, To: f.To}, "server_name = 'filesystem' AND tool_name = 'read_file'")
	check("definition h-read-2", BlastSubject{Server: "filesystem", Tool: "read_file", DefinitionHash: "h-read-2"}, calls, agents)

	calls, agents = fx.direct(t, f, "session_key = ?", fx.sum.ExfilSession)
	check("session", BlastSubject{Session: fx.sum.ExfilSession}, calls, agents)

	// The exfiltration incident: every call of the session its findings are in.
	b = check("incident inc-exfil-1", BlastSubject{Incident: "inc-exfil-1"}, calls, agents)
	if len(b.Sessions) != 1 || b.Sessions[0].SessionKey != fx.sum.ExfilSession {
		t.Errorf("incident: sessions %+v, want only %s", b.Sessions, fx.sum.ExfilSession)
	}

	// Nothing touched an unknown secret.
	if b, err := fx.app.store.BlastRadius(ctx, f, BlastSubject{Fingerprint: "00000000"}); err != nil || len(b.Agents)+len(b.Sessions)+len(b.Calls) != 0 {
		t.Errorf("unknown fingerprint: %+v, %v", b, err)
	}

	// Through the resource endpoint: the answer, and the errors.
	viewer := &backend.User{Login: "v", Role: "Viewer"}
	rng := fmt.Sprintf("from=%d&to=%d", f.From.UnixMilli(), f.To.UnixMilli())
	code, body := callResource(t, fx.app, http.MethodGet, "blast-radius?fingerprint=9f8e7d6c&"+rng, viewer, "")
	var got BlastRadius
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || len(got.Calls) != 2 {
		t.Errorf("GET blast-radius?fingerprint=…: %d %s", code, body)
	}
	for q, want := range map[string]int{
		"":                               http.StatusBadRequest, // no subject
		"fingerprint=9f8e7d6c&session=x": http.StatusBadRequest, // two subjects
		"server=filesystem":              http.StatusBadRequest, // a tool needs both names
		"fingerprint=" + url.QueryEscape("' OR 1=1 --"):         http.StatusBadRequest,
		"server=filesystem&tool=read_file&definition_hash=nope": http.StatusNotFound,
	} {
		if code, body := callResource(t, fx.app, http.MethodGet, "blast-radius?"+q+"&"+rng, viewer, ""); code != want {
			t.Errorf("GET blast-radius?%s: %d %s, want %d", q, code, body, want)
		}
	}
}
