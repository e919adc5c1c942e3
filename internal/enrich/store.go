package enrich

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The SQL of enrich_servers and enrich_sessions (DDL: schema/0018, 0019).
// Both tables hold cumulative rows (every row is the writer's whole state
// of its key: first only moves earlier, last only later), so the row
// ReplacingMergeTree keeps (greatest last; the latest inserted on a tie)
// is the whole state, and readers aggregate per key over the rows not yet
// merged. Replays and retries only add rows that merge to the same answer.
const (
	// loadServersLimit bounds the server rows loaded per agent (the most
	// recently seen first; the agent-level keys are always among them).
	loadServersLimit = 4 * maxConnsPerAgent

	insertServersSQL  = "INSERT INTO %s (tenant, agent_id, conn_kind, conn_client, conn_target, conn_port, server_name, server_version, first_seen_ns, last_seen_ns, updated_at)"
	insertSessionsSQL = "INSERT INTO %s (tenant, agent_id, server_name, start_ns, session_key, first_ns, last_ns, updated_at)"

	// The agents are bound as two arrays (has(?, col): `IN ?` fails on
	// 18.16); rows of other (tenant, agent) pairs are skipped by the reader.
	loadServersSQL = "SELECT tenant, agent_id, conn_kind, conn_client, conn_target, conn_port, server_name, server_version," +
		" min(first_seen_ns), max(last_seen_ns) AS l FROM %s WHERE has(?, tenant) AND has(?, agent_id)" +
		" GROUP BY tenant, agent_id, conn_kind, conn_client, conn_target, conn_port, server_name, server_version" +
		" ORDER BY tenant, agent_id, l DESC LIMIT %d BY tenant, agent_id"
	loadSessionsSQL = "SELECT tenant, agent_id, server_name, start_ns, any(session_key), min(first_ns), max(last_ns) AS l" +
		" FROM %s WHERE has(?, tenant) AND has(?, agent_id)" +
		" GROUP BY tenant, agent_id, server_name, start_ns" +
		" ORDER BY tenant, agent_id, server_name, l DESC LIMIT %d BY tenant, agent_id, server_name"
)

// chState reads and writes the two tables.
type chState struct {
	conn     driver.Conn
	servers  string // qualified table names
	sessions string
}

// load reads the rows of the agents in keys into their (empty) states.
func (s *chState) load(ctx context.Context, keys []agentKey, into map[agentKey]*agentState, x *Enricher) error {
	tenants, agents := make([]string, 0, 1), make([]string, 0, len(keys))
	seenT := map[string]bool{}
	for _, k := range keys {
		if !seenT[k.tenant] {
			seenT[k.tenant] = true
			tenants = append(tenants, k.tenant)
		}
		agents = append(agents, k.agent)
	}
	if err := s.loadServers(ctx, tenants, agents, into); err != nil {
		return err
	}
	return s.loadSessions(ctx, tenants, agents, into, x.cfg.KeepSessions)
}

func (s *chState) loadServers(ctx context.Context, tenants, agents []string, into map[agentKey]*agentState) error {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(loadServersSQL, s.servers, loadServersLimit), tenants, agents)
	if err != nil {
		return fmt.Errorf("cannot load enrich_servers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k agentKey
		var kind string
		var ck connKey
		var name, version string
		var first, last uint64
		if err := rows.Scan(&k.tenant, &k.agent, &kind, &ck.client, &ck.target, &ck.port, &name, &version, &first, &last); err != nil {
			return fmt.Errorf("cannot read enrich_servers: %w", err)
		}
		a := into[k]
		if a == nil {
			continue
		}
		var ok bool
		if ck.kind, ok = parseConnKind(kind); !ok {
			continue
		}
		a.loadServer(ck, name, version, int64(first), int64(last))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read enrich_servers: %w", err)
	}
	return nil
}

func (s *chState) loadSessions(ctx context.Context, tenants, agents []string, into map[agentKey]*agentState, keep int) error {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(loadSessionsSQL, s.sessions, keep), tenants, agents)
	if err != nil {
		return fmt.Errorf("cannot load enrich_sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k agentKey
		var server, key string
		var start, first, last uint64
		if err := rows.Scan(&k.tenant, &k.agent, &server, &start, &key, &first, &last); err != nil {
			return fmt.Errorf("cannot read enrich_sessions: %w", err)
		}
		a := into[k]
		if a == nil {
			continue
		}
		a.loadSession(server, int64(start), key, int64(first), int64(last), keep)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read enrich_sessions: %w", err)
	}
	return nil
}

// loadServer adds one loaded row (not dirty: it is what the table holds).
func (a *agentState) loadServer(k connKey, name, version string, first, last int64) {
	c := a.conns[k]
	if c == nil {
		if k.kind != connAgent && len(a.conns) > maxConnsPerAgent {
			return // rows come most recent first
		}
		c = &conn{key: k}
		a.conns[k] = c
	}
	c.lastNs = max(c.lastNs, last)
	c.entries = append(c.entries, &serverEntry{agent: a, conn: c, name: name, version: version, firstNs: first, lastNs: last, writtenLastNs: last})
	if len(c.entries) > maxEntriesPerConn {
		c.dropEntry()
	}
}

// loadSession adds one loaded session (not dirty).
func (a *agentState) loadSession(server string, start int64, key string, first, last int64, keep int) {
	ss := a.sessions[server]
	if ss == nil {
		if len(a.sessions) >= maxServersPerAgent {
			return
		}
		ss = &serverSessions{}
		a.sessions[server] = ss
	}
	if key == "" {
		key = sessionKey(a.key, server, start)
	}
	ss.insert(&session{agent: a, server: server, startNs: start, firstNs: first, lastNs: last, key: key}, keep)
	ss.lastNs = max(ss.lastNs, last)
}

// serverRows and sessionRows are the columns of one Flush.
type serverRows struct {
	tenant, agent, kind, client, target, name, version []string
	port                                               []uint16
	first, last                                        []uint64
}

type sessionRows struct {
	tenant, agent, server, key []string
	start, first, last         []uint64
}

func (r *serverRows) add(en *serverEntry) {
	k := en.agent.key
	c := en.conn.key
	r.tenant = append(r.tenant, k.tenant)
	r.agent = append(r.agent, k.agent)
	r.kind = append(r.kind, connKindNames[c.kind])
	r.client = append(r.client, c.client)
	r.target = append(r.target, c.target)
	r.port = append(r.port, c.port)
	r.name = append(r.name, en.name)
	r.version = append(r.version, en.version)
	r.first = append(r.first, uint64(en.firstNs))
	r.last = append(r.last, uint64(en.lastNs))
}

func (r *sessionRows) add(s *session) {
	k := s.agent.key
	r.tenant = append(r.tenant, k.tenant)
	r.agent = append(r.agent, k.agent)
	r.server = append(r.server, s.server)
	r.key = append(r.key, s.key)
	r.start = append(r.start, uint64(s.startNs))
	r.first = append(r.first, uint64(s.firstNs))
	r.last = append(r.last, uint64(s.lastNs))
}

// write inserts both tables' rows (each one batch).
func (s *chState) write(ctx context.Context, srv *serverRows, sess *sessionRows, now time.Time) error {
	var errs []error
	if n := len(srv.tenant); n > 0 {
		upd := fill(n, now)
		errs = append(errs, s.insert(ctx, "enrich_servers", fmt.Sprintf(insertServersSQL, s.servers),
			srv.tenant, srv.agent, srv.kind, srv.client, srv.target, srv.port, srv.name, srv.version, srv.first, srv.last, upd))
	}
	if n := len(sess.tenant); n > 0 {
		upd := fill(n, now)
		errs = append(errs, s.insert(ctx, "enrich_sessions", fmt.Sprintf(insertSessionsSQL, s.sessions),
			sess.tenant, sess.agent, sess.server, sess.start, sess.key, sess.first, sess.last, upd))
	}
	return errors.Join(errs...)
}

func fill(n int, t time.Time) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = t
	}
	return out
}

func (s *chState) insert(ctx context.Context, table, sql string, cols ...any) error {
	batch, err := s.conn.PrepareBatch(ctx, sql)
	if err != nil {
		return fmt.Errorf("cannot prepare %s insert: %w", table, err)
	}
	defer batch.Abort() //nolint:errcheck
	for i, col := range cols {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("cannot append %s column %d: %w", table, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot insert into %s: %w", table, err)
	}
	return nil
}

// Flush writes the changes of the batches enriched since the last Flush.
// The analyzer calls it before committing a batch's offsets, so that the
// state a replay would start from is durable first. On error the changes
// are kept for the next Flush (rows are cumulative: writing them later, or
// twice, is harmless) and the caller should retry before committing.
func (x *Enricher) Flush(ctx context.Context) error {
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	x.mu.Lock()
	srvDirty, sessDirty := x.dirtySrv, x.dirtySess
	if len(srvDirty) == 0 && len(sessDirty) == 0 {
		x.mu.Unlock()
		return nil
	}
	x.dirtySrv, x.dirtySess = nil, nil
	var srv serverRows
	var sess sessionRows
	// The entries turn clean (a change from now on queues them again) but
	// their agents keep counting them in nDirty until the write is done:
	// an agent must not be evicted, then loaded again without them, while
	// they are on their way to ClickHouse.
	for _, en := range srvDirty {
		srv.add(en)
		en.dirty = false
		en.writtenLastNs = en.lastNs
	}
	for _, s := range sessDirty {
		sess.add(s)
		s.dirty = false
	}
	gen := x.forgotten
	x.mu.Unlock()

	var err error
	if x.store != nil {
		err = x.store.write(ctx, &srv, &sess, time.Now().UTC().Truncate(time.Second))
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	for _, en := range srvDirty {
		en.agent.nDirty--
	}
	for _, s := range sessDirty {
		s.agent.nDirty--
	}
	if err != nil {
		x.stats.FlushErrors++
		x.m.flushErrors.Inc()
		if gen == x.forgotten { // else the state was dropped: nothing to keep
			for _, en := range srvDirty {
				x.markServer(en)
			}
			for _, s := range sessDirty {
				x.markSession(s)
			}
		}
		return err
	}
	if x.store != nil {
		x.stats.Flushes++
		x.stats.RowsWritten += uint64(len(srv.tenant) + len(sess.tenant))
		x.m.rows.WithLabelValues("enrich_servers").Add(float64(len(srv.tenant)))
		x.m.rows.WithLabelValues("enrich_sessions").Add(float64(len(sess.tenant)))
	}
	x.trim()
	return nil
}
