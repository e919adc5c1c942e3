package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// frameOf runs one query through QueryData over the fixture's range and
// returns its only frame.
func frameOf(t *testing.T, fx *fixture, query string) *data.Frame {
	t.Helper()
	f := fx.scope()
	resp, err := fx.app.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{RefID: "A",
		TimeRange: backend.TimeRange{From: f.From, To: f.To}, JSON: []byte(query)}}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Responses["A"]
	if r.Error != nil || len(r.Frames) != 1 {
		t.Fatalf("%s: error %v, %d frames", query, r.Error, len(r.Frames))
	}
	return r.Frames[0]
}

// The Agents, Sessions and Tools scenes' query types answer what the seed
// wrote (counts from its summary) and what the resources answer.
func TestQueryInventoryTypes(t *testing.T) {
	fx := seeded(t, Settings{})
	sum := fx.sum

	t.Run("agents", func(t *testing.T) {
		fr := frameOf(t, fx, `{"queryType":"agents"}`)
		ids, calls := column[any](t, fr, "agent_id"), column[any](t, fr, "calls")
		if len(ids) != len(sum.CallsByAgent) {
			t.Fatalf("%d agents, want %d", len(ids), len(sum.CallsByAgent))
		}
		for i, id := range ids {
			if want := sum.CallsByAgent[id.(string)]; int(calls[i].(uint64)) != want {
				t.Errorf("agent %s: %d calls, want %d", id, calls[i], want)
			}
		}
		one := frameOf(t, fx, `{"queryType":"agents","agent":"agent-bravo"}`)
		if one.Rows() != 1 || column[any](t, one, "agent_id")[0] != "agent-bravo" {
			t.Errorf("agent-scoped agents = %v", one)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		fr := frameOf(t, fx, `{"queryType":"sessions"}`)
		keys, calls, redacted := column[any](t, fr, "session_key"), column[any](t, fr, "calls"), column[any](t, fr, "redacted")
		if len(keys) != len(sum.Sessions) {
			t.Fatalf("%d sessions, want %d", len(keys), len(sum.Sessions))
		}
		for i, k := range keys {
			if want := sum.Sessions[k.(string)]; int(calls[i].(uint64)) != want {
				t.Errorf("session %s: %d calls, want %d", k, calls[i], want)
			}
			if sum.RedactedSessions[k.(string)] != (redacted[i].(uint64) > 0) {
				t.Errorf("session %s: %d calls with redactions, seed says %v", k, redacted[i], sum.RedactedSessions[k.(string)])
			}
		}
		alpha := frameOf(t, fx, `{"queryType":"sessions","agent":"agent-alpha"}`)
		for _, a := range column[any](t, alpha, "agent_id") {
			if a != "agent-alpha" {
				t.Errorf("agent-scoped sessions has agent %v", a)
			}
		}
		if alpha.Rows() == 0 || alpha.Rows() >= fr.Rows() {
			t.Errorf("agent-alpha has %d of %d sessions", alpha.Rows(), fr.Rows())
		}
	})

	t.Run("calls of a session", func(t *testing.T) {
		fr := frameOf(t, fx, `{"queryType":"calls","session":"`+sum.ExfilSession+`"}`)
		if fr.Rows() != sum.Sessions[sum.ExfilSession] {
			t.Fatalf("%d calls, want %d", fr.Rows(), sum.Sessions[sum.ExfilSession])
		}
		ns, ids := column[any](t, fr, "ts_ns"), column[any](t, fr, "event_id")
		for i := 1; i < len(ns); i++ {
			if ns[i].(uint64) < ns[i-1].(uint64) {
				t.Errorf("call %d is older than the one before", i)
			}
		}
		for _, want := range sum.ExfilEventIDs {
			found := false
			for _, id := range ids {
				found = found || id == want
			}
			if !found {
				t.Errorf("exfil event %s missing", want)
			}
		}
		// Arguments and results as stored: redacted, the marker kept.
		var text strings.Builder
		for _, c := range []string{"arguments", "result"} {
			for _, v := range column[any](t, fr, c) {
				text.WriteString(v.(string))
			}
		}
		if !strings.Contains(text.String(), "[REDACTED:private_key:") || !strings.Contains(text.String(), "https://attacker.example/upload") {
			t.Errorf("session content lacks the redaction marker or the upload: %.300s", text.String())
		}
		if !strings.Contains(strings.Join(toStrings(column[any](t, fr, "tags")), "|"), "secret:") {
			t.Error("no call of the exfil session carries a secret: tag")
		}
	})

	t.Run("newest calls of an agent", func(t *testing.T) {
		fr := frameOf(t, fx, `{"queryType":"calls","agent":"agent-bravo","limit":5}`)
		if fr.Rows() != 5 {
			t.Fatalf("%d calls, want the limit 5", fr.Rows())
		}
		ts := column[any](t, fr, "ts")
		for i, a := range column[any](t, fr, "agent_id") {
			if a != "agent-bravo" {
				t.Errorf("call %d of agent %v", i, a)
			}
			if i > 0 && ts[i].(time.Time).After(ts[i-1].(time.Time)) {
				t.Errorf("call %d is newer than the one before", i)
			}
		}
	})

	t.Run("tools", func(t *testing.T) {
		fr := frameOf(t, fx, `{"queryType":"tools"}`)
		servers, tools, versions, calls := column[any](t, fr, "server_name"), column[any](t, fr, "tool_name"), column[any](t, fr, "versions"), column[any](t, fr, "calls")
		if len(tools) != len(sum.ToolVersions) {
			t.Fatalf("%d tools, want %d", len(tools), len(sum.ToolVersions))
		}
		for i := range tools {
			k := servers[i].(string) + "/" + tools[i].(string)
			if int(versions[i].(uint64)) != sum.ToolVersions[k] {
				t.Errorf("%s: %d versions, want %d", k, versions[i], sum.ToolVersions[k])
			}
			if int(calls[i].(uint64)) != sum.CallsByTool[k] {
				t.Errorf("%s: %d calls, want %d", k, calls[i], sum.CallsByTool[k])
			}
		}
		one := frameOf(t, fx, `{"queryType":"tools","server":"filesystem","tool":"read_file"}`)
		if one.Rows() != 1 || column[any](t, one, "tool_name")[0] != "read_file" {
			t.Errorf("tool-scoped tools = %v", one)
		}
	})

	t.Run("tool definitions", func(t *testing.T) {
		fr := frameOf(t, fx, `{"queryType":"tool_definitions","server":"filesystem","tool":"read_file"}`)
		want, err := fx.app.store.ToolDefinitions(context.Background(), Filter{From: fx.scope().From, To: fx.scope().To, Server: "filesystem", Tool: "read_file"})
		if err != nil {
			t.Fatal(err)
		}
		if fr.Rows() != sum.ToolVersions["filesystem/read_file"] || fr.Rows() != len(want) || fr.Rows() < 2 {
			t.Fatalf("%d definitions, want %d (store %d)", fr.Rows(), sum.ToolVersions["filesystem/read_file"], len(want))
		}
		hashes, diffs, descs := column[any](t, fr, "definition_hash"), column[any](t, fr, "diff"), column[any](t, fr, "description")
		if hashes[0] != "h-read-1" || !strings.Contains(descs[len(descs)-1].(string), "<IMPORTANT>") {
			t.Errorf("history %v: want h-read-1 first and the poisoned description last", hashes)
		}
		if diffs[0] != "" {
			t.Errorf("the first definition has a diff: %v", diffs[0])
		}
		for i, d := range want {
			if hashes[i] != d.Hash {
				t.Errorf("definition %d: %v, store says %s", i, hashes[i], d.Hash)
			}
			if d.Diff == nil {
				continue
			}
			var got DefinitionDiff
			if err := json.Unmarshal([]byte(diffs[i].(string)), &got); err != nil || got.PreviousHash != d.Diff.PreviousHash {
				t.Errorf("definition %d diff %v (%v), store says previous %s", i, diffs[i], err, d.Diff.PreviousHash)
			}
		}
	})
}

func toStrings(xs []any) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.(string)
	}
	return out
}
