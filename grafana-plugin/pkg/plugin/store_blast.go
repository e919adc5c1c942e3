package plugin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// BlastSubject is what a blast radius starts from: exactly one of a tool
// (server and tool, optionally one of its definitions), a redaction
// fingerprint, a session or an incident.
type BlastSubject struct {
	Server, Tool   string // a tool: every call of it
	DefinitionHash string // with Server and Tool: only while this definition was served
	Fingerprint    string // a redacted secret: every call whose evidence carried it
	Session        string // a session key: every call of it
	Incident       string // an incident: every call of the sessions its findings are in
}

// BlastRadius is every agent, session and call that touched a subject in
// the filter's time range, and how many calls per time bucket. "Calls"
// here are MCP requests of every method (tools/call, tools/list,
// resources/read, …: a secret can come back from a resource read), counted
// once per call as the other pages count tools/call.
type BlastRadius struct {
	Subject  BlastSubject  `json:"subject"`
	From     time.Time     `json:"from"` // the range actually searched (a definition narrows it)
	To       time.Time     `json:"to"`
	Agents   []BlastAgent  `json:"agents"`
	Sessions []BlastSess   `json:"sessions"`
	Calls    []Event       `json:"calls"` // newest first, at most the filter's limit
	Series   []BlastBucket `json:"series"`
	// Truncated: more agents or sessions than listed (the lists keep the
	// most active agents and the newest sessions).
	Truncated bool `json:"truncated"`
}

// BlastAgent is one agent in a blast radius.
type BlastAgent struct {
	AgentID   string    `json:"agent_id"`
	Calls     uint64    `json:"calls"`
	Sessions  uint64    `json:"sessions"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// BlastSess is one session in a blast radius.
type BlastSess struct {
	SessionKey string    `json:"session_key"`
	AgentID    string    `json:"agent_id"`
	Calls      uint64    `json:"calls"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
}

// BlastBucket is the calls and distinct agents of one time bucket.
type BlastBucket struct {
	Time   time.Time `json:"t"`
	Calls  uint64    `json:"calls"`
	Agents uint64    `json:"agents"`
}

const blastListMax = 500

var fingerprintRe = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// ErrNoDefinition is returned when a definition hash is not one of the tool's.
var ErrNoDefinition = errors.New("no such tool definition")

// ErrBadSubject is returned for a subject that is not exactly one thing.
var ErrBadSubject = errors.New("set exactly one of: server and tool (optionally definition_hash), fingerprint, session, incident")

// validate reports a subject that is not exactly one thing, as a
// ErrBadSubject or a message for the requester.
func (b BlastSubject) validate() error {
	n := 0
	for _, set := range []bool{b.Server != "" || b.Tool != "" || b.DefinitionHash != "", b.Fingerprint != "", b.Session != "", b.Incident != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return ErrBadSubject
	}
	if (b.Server != "" || b.Tool != "" || b.DefinitionHash != "") && (b.Server == "" || b.Tool == "") {
		return fmt.Errorf("%w: a tool is named by both server and tool", ErrBadSubject)
	}
	if b.Fingerprint != "" && !fingerprintRe.MatchString(b.Fingerprint) {
		return fmt.Errorf("%w: fingerprint %q is not the hex of a [REDACTED:<kind>:<fingerprint>] marker", ErrBadSubject, b.Fingerprint)
	}
	return nil
}

// BlastRadius finds every agent, session and call that touched subj.
// Each part is one query over events with the subject's condition; the
// fingerprint and incident subjects first narrow to their agents, so the
// events' primary key (tenant, agent_id, ts) prunes the scan.
func (s *Store) BlastRadius(ctx context.Context, f Filter, subj BlastSubject) (BlastRadius, error) {
	if err := subj.validate(); err != nil {
		return BlastRadius{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if subj.DefinitionHash != "" {
		if err := s.narrowToDefinition(ctx, &f, subj); err != nil {
			return BlastRadius{}, err
		}
	}
	out := BlastRadius{Subject: subj, From: f.From, To: f.To, Agents: []BlastAgent{}, Sessions: []BlastSess{}, Calls: []Event{}, Series: []BlastBucket{}}
	if !f.From.Before(f.To) {
		return out, nil // the definition was not served in the range
	}
	var c cond
	c.add("ts >= toDateTime(?) AND ts <= toDateTime(?) AND kind = 'message' AND "+counted, f.from(), f.to())
	c.tenant(f.Tenant, f.Tenants)
	c.eqAgent(f.Agent)
	switch {
	case subj.Tool != "":
		c.add("server_name = ? AND tool_name = ?", subj.Server, subj.Tool)
	case subj.Fingerprint != "":
		var sc cond
		sc.add("fingerprint = ? AND ts >= toDateTime(?) AND ts <= toDateTime(?)", subj.Fingerprint, f.from(), f.to())
		sc.tenant(f.Tenant, f.Tenants)
		src := "SELECT %s FROM " + s.t("redaction_sightings") + " WHERE " + sc.String()
		c.add("agent_id IN ("+fmt.Sprintf(src, "agent_id")+")", sc.args...)
		c.add("event_id IN ("+fmt.Sprintf(src, "event_id")+")", sc.args...)
	case subj.Session != "":
		c.add("session_key = ?", subj.Session)
	case subj.Incident != "":
		var ic cond
		ic.add("incident_id = ?", subj.Incident)
		ic.tenant(f.Tenant, f.Tenants)
		src := "SELECT %s FROM " + s.t("findings") + " WHERE " + ic.String()
		c.add("agent_id IN ("+fmt.Sprintf(src, "agent_id")+")", ic.args...)
		c.add("session_key IN ("+fmt.Sprintf(src, "session_key")+" AND session_key != '')", ic.args...)
	}
	w, args := c.String(), c.args

	rows, err := s.conn.Query(ctx, "SELECT agent_id, uniqExact("+callKey+") AS calls, uniqExact(session_key), min(ts), max(ts) FROM "+s.t("events")+
		" WHERE "+w+" GROUP BY agent_id ORDER BY calls DESC, agent_id LIMIT ?", append(args, blastListMax+1)...)
	if err != nil {
		return out, fmt.Errorf("cannot query blast radius agents: %w", err)
	}
	for rows.Next() {
		var a BlastAgent
		if err := rows.Scan(&a.AgentID, &a.Calls, &a.Sessions, &a.FirstSeen, &a.LastSeen); err != nil {
			rows.Close()
			return out, fmt.Errorf("cannot scan blast radius agents: %w", err)
		}
		a.AgentID, a.FirstSeen, a.LastSeen = agentOut(a.AgentID), a.FirstSeen.UTC(), a.LastSeen.UTC()
		out.Agents = append(out.Agents, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("cannot read blast radius agents: %w", err)
	}
	if len(out.Agents) == 0 {
		return out, nil // nothing touched it: the other parts are empty too
	}
	if len(out.Agents) <= blastListMax {
		// The other parts read only these agents' rows: the events'
		// primary key (tenant, agent_id, ts) skips everyone else's, which
		// is most of a scan for a tool or a session.
		ids := make([]string, len(out.Agents))
		for i, a := range out.Agents {
			ids[i] = agentIn(a.AgentID)
		}
		w += " AND agent_id IN (SELECT arrayJoin(?))"
		args = append(slices.Clip(args), ids)
	}

	rows, err = s.conn.Query(ctx, "SELECT session_key, any(agent_id), uniqExact("+callKey+"), min(ts), max(ts) AS last FROM "+s.t("events")+
		" WHERE "+w+" AND session_key != '' GROUP BY session_key ORDER BY last DESC, session_key LIMIT ?", append(args, blastListMax+1)...)
	if err != nil {
		return out, fmt.Errorf("cannot query blast radius sessions: %w", err)
	}
	for rows.Next() {
		var x BlastSess
		if err := rows.Scan(&x.SessionKey, &x.AgentID, &x.Calls, &x.FirstSeen, &x.LastSeen); err != nil {
			rows.Close()
			return out, fmt.Errorf("cannot scan blast radius sessions: %w", err)
		}
		x.AgentID, x.FirstSeen, x.LastSeen = agentOut(x.AgentID), x.FirstSeen.UTC(), x.LastSeen.UTC()
		out.Sessions = append(out.Sessions, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("cannot read blast radius sessions: %w", err)
	}
	if len(out.Agents) > blastListMax || len(out.Sessions) > blastListMax {
		out.Truncated = true
		out.Agents = out.Agents[:min(len(out.Agents), blastListMax)]
		out.Sessions = out.Sessions[:min(len(out.Sessions), blastListMax)]
	}

	step := f.step()
	rows, err = s.conn.Query(ctx, "SELECT toDateTime(intDiv(toUInt32(ts), ?) * ?) AS t, uniqExact("+callKey+"), uniqExact(agent_id) FROM "+s.t("events")+
		" WHERE "+w+" GROUP BY t ORDER BY t", append([]any{step, step}, args...)...)
	if err != nil {
		return out, fmt.Errorf("cannot query blast radius series: %w", err)
	}
	for rows.Next() {
		var b BlastBucket
		if err := rows.Scan(&b.Time, &b.Calls, &b.Agents); err != nil {
			rows.Close()
			return out, fmt.Errorf("cannot scan blast radius series: %w", err)
		}
		b.Time = b.Time.UTC()
		out.Series = append(out.Series, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("cannot read blast radius series: %w", err)
	}

	calls, err := s.conn.Query(ctx, "SELECT "+eventCols+" FROM "+s.t("events")+" WHERE "+w+
		" ORDER BY ts_ns DESC, event_id LIMIT 1 BY event_id LIMIT ?", append(args, f.limit(100, 1000))...)
	if err != nil {
		return out, fmt.Errorf("cannot query blast radius calls: %w", err)
	}
	if out.Calls, err = scanEvents(calls); err != nil {
		return out, err
	}
	return out, nil
}

// narrowToDefinition limits f to when the subject's definition was the
// tool's current one: from its first sighting to the first sighting of the
// next definition of the tool (tool_definitions, schema 0003).
func (s *Store) narrowToDefinition(ctx context.Context, f *Filter, subj BlastSubject) error {
	var c cond
	c.add("server_name = ? AND tool_name = ?", subj.Server, subj.Tool)
	c.tenant(f.Tenant, f.Tenants)
	rows, err := s.conn.Query(ctx, "SELECT definition_hash, min(first_seen) AS fs FROM "+s.t("tool_definitions")+
		" WHERE "+c.String()+" GROUP BY definition_hash ORDER BY fs, definition_hash", c.args...)
	if err != nil {
		return fmt.Errorf("cannot query tool definitions: %w", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var hash string
		var first time.Time
		if err := rows.Scan(&hash, &first); err != nil {
			return fmt.Errorf("cannot scan tool definitions: %w", err)
		}
		switch {
		case hash == subj.DefinitionHash:
			found = true
			if first.After(f.From) {
				f.From = first.UTC()
			}
		case found:
			if first.Before(f.To) {
				f.To = first.UTC()
			}
			return rows.Err()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read tool definitions: %w", err)
	}
	if !found {
		return fmt.Errorf("%w: %s/%s has no definition %q", ErrNoDefinition, subj.Server, subj.Tool, subj.DefinitionHash)
	}
	return nil
}
