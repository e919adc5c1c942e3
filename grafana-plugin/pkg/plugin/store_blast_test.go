package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/chserver"
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

// blastScan is what BlastRadius must answer, computed from a raw scan of the
// events (the queries of the blast radius before blast_index, schema 0028):
// every agent and session in full, the series at f's step, the newest calls'
// tenants and event ids and the count of the others. where selects the subject's events.
func blastScan(t *testing.T, s *Store, f Filter, where string, args ...any) BlastRadius {
	t.Helper()
	ctx := context.Background()
	var c cond
	c.add("kind = 'message' AND "+counted+" AND ts >= toDateTime(?) AND ts <= toDateTime(?)", f.from(), f.to())
	c.tenant(f.Tenant, f.Tenants)
	c.eqAgent(f.Agent)
	c.add(where, args...)
	w := " FROM " + s.t("events") + " WHERE " + c.String()
	out := BlastRadius{Agents: []BlastAgent{}, Sessions: []BlastSess{}, Calls: []Event{}, Series: []BlastBucket{}}
	query := func(q string, args []any, scan func(driver.Rows) error) {
		t.Helper()
		rows, err := s.conn.Query(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	query("SELECT agent_id, uniqExact("+callKey+"), uniqExact(session_key), min(ts), max(ts)"+w+" GROUP BY agent_id", c.args, func(r driver.Rows) error {
		var a BlastAgent
		err := r.Scan(&a.AgentID, &a.Calls, &a.Sessions, &a.FirstSeen, &a.LastSeen)
		a.AgentID, a.FirstSeen, a.LastSeen = agentOut(a.AgentID), a.FirstSeen.UTC(), a.LastSeen.UTC()
		out.Agents = append(out.Agents, a)
		return err
	})
	query("SELECT session_key, any(agent_id), uniqExact("+callKey+"), min(ts), max(ts)"+w+" AND session_key != '' GROUP BY session_key", c.args, func(r driver.Rows) error {
		var x BlastSess
		err := r.Scan(&x.SessionKey, &x.AgentID, &x.Calls, &x.FirstSeen, &x.LastSeen)
		x.AgentID, x.FirstSeen, x.LastSeen = agentOut(x.AgentID), x.FirstSeen.UTC(), x.LastSeen.UTC()
		out.Sessions = append(out.Sessions, x)
		return err
	})
	step := f.step()
	query("SELECT toDateTime(intDiv(toUInt32(ts), ?) * ?) AS t, uniqExact("+callKey+"), uniqExact(agent_id)"+w+" GROUP BY t ORDER BY t", append([]any{step, step}, c.args...), func(r driver.Rows) error {
		var b BlastBucket
		err := r.Scan(&b.Time, &b.Calls, &b.Agents)
		b.Time = b.Time.UTC()
		out.Series = append(out.Series, b)
		return err
	})
	query("SELECT toString(tenant), event_id"+w+" ORDER BY ts_ns DESC, event_id, tenant LIMIT 1 BY tenant, event_id LIMIT ?", append(c.args, f.limit(100, 1000)), func(r driver.Rows) error {
		var e Event
		err := r.Scan(&e.Tenant, &e.EventID)
		out.Calls = append(out.Calls, e)
		return err
	})
	query("SELECT uniqExact(tenant, event_id)"+w, c.args, func(r driver.Rows) error {
		return r.Scan(&out.MoreCalls)
	})
	out.MoreCalls -= uint64(len(out.Calls))
	return out
}

// sameBlast reports how got (BlastRadius) differs from want (blastScan):
// agents and sessions compared as sets (want lists them all), the series,
// the listed calls' ids in order and the count of the others.
func sameBlast(got, want BlastRadius) string {
	byAgent := func(a, b BlastAgent) int { return strings.Compare(a.AgentID, b.AgentID) }
	bySession := func(a, b BlastSess) int { return strings.Compare(a.SessionKey, b.SessionKey) }
	ga, gs := slices.SortedFunc(slices.Values(got.Agents), byAgent), slices.SortedFunc(slices.Values(got.Sessions), bySession)
	wa, ws := slices.SortedFunc(slices.Values(want.Agents), byAgent), slices.SortedFunc(slices.Values(want.Sessions), bySession)
	ids := func(evs []Event) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.Tenant+"/"+e.EventID)
		}
		return out
	}
	var diffs []string
	if !slices.Equal(ga, wa) {
		diffs = append(diffs, fmt.Sprintf("agents %+v, want %+v", ga, wa))
	}
	if !slices.Equal(gs, ws) {
		diffs = append(diffs, fmt.Sprintf("sessions %+v, want %+v", gs, ws))
	}
	if !slices.Equal(got.Series, want.Series) {
		diffs = append(diffs, fmt.Sprintf("series %+v, want %+v", got.Series, want.Series))
	}
	if !slices.Equal(ids(got.Calls), ids(want.Calls)) || got.MoreCalls != want.MoreCalls {
		diffs = append(diffs, fmt.Sprintf("calls %v + %d more, want %v + %d more", ids(got.Calls), got.MoreCalls, ids(want.Calls), want.MoreCalls))
	}
	return strings.Join(diffs, "; ")
}

// TestBlastRadiusMatchesScan: for every kind of subject, in every tenant
// scope, the answer read from blast_index equals the one computed from a
// raw scan of the events: agents, sessions, calls per agent and session,
// first and last seen, the series, the listed calls. The data: the seed as
// tenants default and globex (five minutes apart, same ids), plus a call
// observed twice (client and server, one call_id) and an observation
// tagged duplicate_observation. Then replays (the same events inserted
// again, merges stopped so the copies stay) change no answer, and the
// migration's backfill of events written before it rebuilds the same index.
func TestBlastRadiusMatchesScan(t *testing.T) {
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Minute)
	app, sum := tenantWorld(t, base, false, nil, "")
	s := app.store
	// One call seen by client and server (two events, one call_id), and a
	// duplicate client observation, which no count includes.
	ts := base.Add(-42 * time.Minute)
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("events")+" (event_id, tenant, kind, ts, ts_ns, observer, method, call_id, session_key, agent_id, server_name, tool_name, arguments, outcome, tags, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		id, observer string
		tags         []string
	}{{"two-obs-client", "client", nil}, {"two-obs-server", "server", nil}, {"two-obs-dup", "client", []string{"duplicate_observation"}}} {
		if err := b.Append(e.id, "default", "message", ts, uint64(ts.UnixNano()), e.observer, "tools/call", "call-two-obs", sum.ExfilSession, seed.Agents[0].ID,
			"filesystem", "read_file", `{"k":"[REDACTED:aws_access_key:1a2b3c4d]"}`, "ok", append(e.tags, "secret:aws_access_key"), ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	rng := Filter{From: base.Add(-3 * time.Hour), To: base.Add(time.Minute)}
	findings := func(f Filter) (string, []any) {
		var ic cond
		ic.add("incident_id = ?", sum.ExfilIncident)
		ic.tenant(f.Tenant, f.Tenants)
		q := "SELECT %s FROM " + s.t("findings") + " WHERE " + ic.String()
		return "agent_id IN (" + fmt.Sprintf(q, "agent_id") + ") AND session_key IN (" + fmt.Sprintf(q, "session_key") + ")", append(slices.Clip(ic.args), ic.args...)
	}
	secret := func(fp string) (string, []any) {
		return "arrayExists(x -> startsWith(x, 'secret:'), tags) AND (arguments LIKE ? OR result LIKE ?)", []any{"%:" + fp + "]%", "%:" + fp + "]%"}
	}
	type kase struct {
		name  string
		subj  BlastSubject
		where func(Filter) (string, []any)
	}
	tool := func(Filter) (string, []any) {
		return "server_name = ? AND tool_name = ?", []any{"filesystem", "read_file"}
	}
	cases := []kase{
		{"tool", BlastSubject{Server: "filesystem", Tool: "read_file"}, tool},
		// A definition narrows the range to when it was served (checked in
		// TestBlastRadius): bounds at any second, not whole minutes.
		{"definition h-read-1", BlastSubject{Server: "filesystem", Tool: "read_file", DefinitionHash: "h-read-1"}, tool},
		{"definition h-read-2", BlastSubject{Server: "filesystem", Tool: "read_file", DefinitionHash: "h-read-2"}, tool},
		{"secret 1a2b3c4d", BlastSubject{Fingerprint: "1a2b3c4d"}, func(Filter) (string, []any) { return secret("1a2b3c4d") }},
		{"secret 9f8e7d6c", BlastSubject{Fingerprint: "9f8e7d6c"}, func(Filter) (string, []any) { return secret("9f8e7d6c") }},
		{"session", BlastSubject{Session: sum.ExfilSession}, func(Filter) (string, []any) { return "session_key = ?", []any{sum.ExfilSession} }},
		{"incident", BlastSubject{Incident: sum.ExfilIncident}, findings},
	}
	scopes := map[string]Filter{
		"tenant default":                {Tenants: []string{"default"}},
		"tenant globex":                 {Tenants: []string{"globex"}},
		"every tenant":                  {},
		"globex, one agent, 5 min step": {Tenant: "globex", Agent: seed.Agents[0].ID, Step: 300},
		"no tenant":                     {Tenants: []string{}},
	}
	check := func(stage string) map[string]BlastRadius {
		t.Helper()
		answers := map[string]BlastRadius{}
		for sname, sc := range scopes {
			sc.From, sc.To = rng.From, rng.To
			for _, k := range cases {
				got, err := s.BlastRadius(ctx, sc, k.subj)
				if sname == "no tenant" && k.subj.DefinitionHash != "" && errors.Is(err, ErrNoDefinition) {
					continue // the reader sees no definition at all
				}
				if err != nil {
					t.Fatalf("%s, %s, %s: %v", stage, sname, k.name, err)
				}
				if k.subj.DefinitionHash != "" && got.From.Equal(sc.From) && got.To.Equal(sc.To) {
					t.Errorf("%s, %s, %s: the definition did not narrow the range", stage, sname, k.name)
				}
				nf := sc
				nf.From, nf.To = got.From, got.To
				where, args := k.where(nf)
				want := blastScan(t, s, nf, where, args...)
				if d := sameBlast(got, want); d != "" {
					t.Errorf("%s, %s, %s: %s", stage, sname, k.name, d)
				}
				if sname != "no tenant" && len(want.Agents) == 0 {
					t.Errorf("%s, %s, %s: the raw scan finds nothing; the comparison proves nothing", stage, sname, k.name)
				}
				answers[sname+"|"+k.name] = got
			}
		}
		return answers
	}
	before := check("as ingested")
	// The scopes do separate: globex's copy is five minutes older.
	for _, k := range cases {
		d, g := before["tenant default|"+k.name], before["tenant globex|"+k.name]
		if len(d.Agents) == 0 || len(g.Agents) == 0 || d.Agents[0].LastSeen.Equal(g.Agents[0].LastSeen) {
			t.Errorf("%s: tenants default and globex answer alike (%+v, %+v)", k.name, d.Agents, g.Agents)
		}
	}
	// The call observed by client and server is one call of two listed
	// observations; the duplicate observation is neither.
	if b := before["tenant default|session"]; b.MoreCalls+uint64(len(b.Calls)) != b.Agents[0].Calls+1 {
		t.Errorf("session: %d calls in %d+%d observations, want one observation more than calls", b.Agents[0].Calls, len(b.Calls), b.MoreCalls)
	}

	// Replays: every event of the subjects again, while merges are stopped
	// so the copies stay side by side in blast_index.
	exec := func(q string, args ...any) {
		t.Helper()
		if err := s.conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	indexRows := func() (rows, distinct uint64) {
		t.Helper()
		if err := s.conn.QueryRow(ctx, "SELECT count(), uniqExact(tenant, subject, ts, event_id) FROM "+s.t("blast_index")).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		return rows, distinct
	}
	exec("SYSTEM STOP MERGES " + s.t("blast_index"))
	t.Cleanup(func() { _ = s.conn.Exec(context.Background(), "SYSTEM START MERGES "+s.t("blast_index")) })
	exec("INSERT INTO " + s.t("events") + " SELECT * FROM " + s.t("events") + " WHERE kind = 'message'")
	if rows, distinct := indexRows(); rows < 2*distinct {
		t.Fatalf("after replaying every event blast_index has %d rows for %d distinct: the replay did not reach it", rows, distinct)
	}
	replayed := check("replayed")
	for k, b := range before {
		if d := sameBlast(replayed[k], b); d != "" {
			t.Errorf("%s: a replay changed the answer: %s", k, d)
		}
	}
	exec("SYSTEM START MERGES " + s.t("blast_index"))

	// The backfill of 0028 (events from before the migration): from an
	// empty index it writes the rows the view wrote.
	_, distinct := indexRows()
	dir, err := chserver.SchemaDir()
	if err != nil {
		t.Fatal(err)
	}
	mig, err := os.ReadFile(filepath.Join(dir, "0028_blast_index.sql"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(mig), "INSERT INTO {db}.blast_index")
	if i < 0 {
		t.Fatal("0028 has no backfill INSERT")
	}
	exec("DROP TABLE " + s.t("blast_index_mv")) // so that the backfill alone fills it
	for _, p := range []string{"TRUNCATE TABLE " + s.t("blast_index")} {
		exec(p)
	}
	exec(strings.ReplaceAll(string(mig[i:]), "{db}", s.db))
	if _, d := indexRows(); d != distinct {
		t.Errorf("the backfill wrote %d distinct rows, the view %d", d, distinct)
	}
	check("backfilled")
}
