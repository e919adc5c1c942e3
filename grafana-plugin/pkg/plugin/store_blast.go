package plugin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
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
	// MoreCalls: how many more call observations (events) touched the
	// subject than Calls lists.
	MoreCalls uint64 `json:"more_calls"`
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
// Agents, sessions, the series and the totals are read from blast_index
// (schema 0028), which holds one row per counted call observation and
// subject, ordered by (tenant, subject, ts): a primary-key range per
// subject instead of a scan of the events. Only the listed calls are read
// from events, by their agents, times and ids.
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
	c.add("ts >= toDateTime(?) AND ts <= toDateTime(?)", f.from(), f.to())
	c.tenant(f.Tenant, f.Tenants)
	c.eqAgent(f.Agent)
	switch {
	case subj.Tool != "":
		c.add("subject = ?", blastSubjectKey("tool", subj.Server, subj.Tool))
	case subj.Fingerprint != "":
		c.add("subject = ?", blastSubjectKey("secret", subj.Fingerprint))
	case subj.Session != "":
		c.add("subject = ?", blastSubjectKey("session", subj.Session))
	case subj.Incident != "":
		// Every call of the sessions its findings are in, by the agents
		// of its findings: read once, bound to the four reads below.
		var ic cond
		ic.add("incident_id = ?", subj.Incident)
		ic.tenant(f.Tenant, f.Tenants)
		var sessions, agents []string
		if err := s.conn.QueryRow(ctx, "SELECT groupUniqArrayIf(concat('session\\0', session_key), session_key != ''), groupUniqArray(agent_id) FROM "+
			s.t("findings")+" WHERE "+ic.String(), ic.args...).Scan(&sessions, &agents); err != nil {
			return out, fmt.Errorf("cannot query the incident's findings: %w", err)
		}
		if len(sessions) == 0 {
			return out, nil
		}
		c.add("subject IN (SELECT arrayJoin(?))", sessions)
		c.add("agent_id IN (SELECT arrayJoin(?))", agents)
	}
	from, w, args := " FROM "+s.t("blast_index")+" WHERE ", c.String(), c.args

	// Agents, sessions and the series are three reads of the same rows:
	// run at once, they overlap.
	agents := func() error {
		return s.blastRows(ctx, "agents", "SELECT agent_id, uniqExact(call_key) AS calls, uniqExact(session_key), min(ts), max(ts)"+from+w+
			" GROUP BY agent_id ORDER BY calls DESC, agent_id LIMIT ?", append(slices.Clip(args), blastListMax+1), func(rows driver.Rows) error {
			var a BlastAgent
			if err := rows.Scan(&a.AgentID, &a.Calls, &a.Sessions, &a.FirstSeen, &a.LastSeen); err != nil {
				return err
			}
			a.AgentID, a.FirstSeen, a.LastSeen = agentOut(a.AgentID), a.FirstSeen.UTC(), a.LastSeen.UTC()
			out.Agents = append(out.Agents, a)
			return nil
		})
	}
	sessions := func() error {
		return s.blastRows(ctx, "sessions", "SELECT session_key, any(agent_id), uniqExact(call_key), min(ts), max(ts) AS last"+from+w+
			" AND session_key != '' GROUP BY session_key ORDER BY last DESC, session_key LIMIT ?", append(slices.Clip(args), blastListMax+1), func(rows driver.Rows) error {
			var x BlastSess
			if err := rows.Scan(&x.SessionKey, &x.AgentID, &x.Calls, &x.FirstSeen, &x.LastSeen); err != nil {
				return err
			}
			x.AgentID, x.FirstSeen, x.LastSeen = agentOut(x.AgentID), x.FirstSeen.UTC(), x.LastSeen.UTC()
			out.Sessions = append(out.Sessions, x)
			return nil
		})
	}
	// The series also counts the observations (events, by tenant and id)
	// per bucket: each has one ts, so their sum is the total, and the
	// newest buckets that hold the listed calls bound the read of the list.
	step := f.step()
	var events []uint64
	series := func() error {
		return s.blastRows(ctx, "series", "SELECT toDateTime(intDiv(toUInt32(ts), ?) * ?) AS t, uniqExact(call_key), uniqExact(agent_id), uniqExact(tenant, event_id)"+from+w+
			" GROUP BY t ORDER BY t", append([]any{step, step}, args...), func(rows driver.Rows) error {
			var b BlastBucket
			var n uint64
			if err := rows.Scan(&b.Time, &b.Calls, &b.Agents, &n); err != nil {
				return err
			}
			b.Time = b.Time.UTC()
			out.Series = append(out.Series, b)
			events = append(events, n)
			out.MoreCalls += n
			return nil
		})
	}
	parts := []func() error{agents, sessions, series}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = part() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	if len(out.Agents) > blastListMax || len(out.Sessions) > blastListMax {
		out.Truncated = true
		out.Agents = out.Agents[:min(len(out.Agents), blastListMax)]
		out.Sessions = out.Sessions[:min(len(out.Sessions), blastListMax)]
	}
	if len(out.Agents) == 0 {
		return out, nil // nothing touched it
	}

	// The newest observations (one per tenant and event id: a replay's
	// copies are one) from the newest buckets that hold that many, then
	// those events by primary key.
	limit := f.limit(100, 1000)
	since, held := f.From, uint64(0)
	for i := len(events) - 1; i >= 0 && held < uint64(limit); i-- {
		since, held = maxTime(f.From, out.Series[i].Time), held+events[i]
	}
	var picked []blastPick
	err := s.blastRows(ctx, "calls", "SELECT toString(tenant), event_id, agent_id, ts"+from+w+" AND ts >= toDateTime(?)"+
		" ORDER BY ts_ns DESC, event_id, tenant LIMIT 1 BY tenant, event_id LIMIT ?", append(args, since.Unix(), limit), func(rows driver.Rows) error {
		var p blastPick
		if err := rows.Scan(&p.tenant, &p.eventID, &p.agentID, &p.ts); err != nil {
			return err
		}
		picked = append(picked, p)
		return nil
	})
	if err != nil {
		return out, err
	}
	if out.Calls, err = s.pickedEvents(ctx, f, picked); err != nil {
		return out, err
	}
	out.MoreCalls -= min(out.MoreCalls, uint64(len(out.Calls)))
	return out, nil
}

// blastSubjectKey is a blast_index subject (schema 0028): the kind and its
// names, each after a NUL.
func blastSubjectKey(kind string, names ...string) string {
	return kind + "\x00" + strings.Join(names, "\x00")
}

// blastRows runs q and calls scan for each row.
func (s *Store) blastRows(ctx context.Context, what, q string, args []any, scan func(driver.Rows) error) error {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cannot query blast radius %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("cannot scan blast radius %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read blast radius %s: %w", what, err)
	}
	return nil
}

// blastPick is one listed call as blast_index has it: where to find it in
// events.
type blastPick struct {
	tenant, eventID, agentID string
	ts                       time.Time
}

// pickedEvents reads the picked events, in the picked order. The events'
// primary key (tenant, agent_id, ts) narrows the read to the picked agents
// between the oldest and the newest picked second; the ids select the rows.
// A second tenant may reuse an event id, so rows are kept by (tenant,
// event id).
func (s *Store) pickedEvents(ctx context.Context, f Filter, picked []blastPick) ([]Event, error) {
	if len(picked) == 0 {
		return []Event{}, nil
	}
	order := map[[2]string]int{}
	var tenants, agents, ids []string
	first, last := picked[0].ts, picked[0].ts
	for i, p := range picked {
		order[[2]string{p.tenant, p.eventID}] = i
		tenants, agents, ids = append(tenants, p.tenant), append(agents, p.agentID), append(ids, p.eventID)
		first, last = minTime(first, p.ts), maxTime(last, p.ts)
	}
	var c cond
	c.add("kind = 'message' AND " + counted)
	c.tenant(f.Tenant, f.Tenants)
	c.add("tenant IN (SELECT arrayJoin(?))", tenants)
	c.add("agent_id IN (SELECT arrayJoin(?))", agents)
	c.add("ts >= toDateTime(?) AND ts <= toDateTime(?)", first.Unix(), last.Unix())
	c.add("event_id IN (SELECT arrayJoin(?))", ids)
	rows, err := s.conn.Query(ctx, "SELECT "+eventCols+" FROM "+s.t("events")+" WHERE "+c.String()+
		" ORDER BY ts_ns DESC, event_id LIMIT 1 BY tenant, event_id", c.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query blast radius calls: %w", err)
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, err
	}
	slot := make([]*Event, len(picked))
	for i := range evs {
		if j, ok := order[[2]string{evs[i].Tenant, evs[i].EventID}]; ok {
			slot[j] = &evs[i]
		}
	}
	out := make([]Event, 0, len(picked))
	for _, e := range slot {
		if e != nil { // nil: its event is gone (retention) while the index row is not
			out = append(out, *e)
		}
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
