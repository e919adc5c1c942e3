import { useState } from 'react';
import { Button, Input, RadioButtonGroup } from '@grafana/ui';
import { getResource } from '../api';
import { BlastRadius } from '../types';
import { fmtNum, fmtTime } from '../format';
import { Nav } from '../components/App';
import { Loading, Section, Stat, useLoad, useTableStyles } from '../components/common';
import { CallsChart } from '../components/charts';
import { EventsTable } from '../components/Events';

/** What a blast radius starts from, and the URL parameters naming it. */
const KINDS = [
  { value: 'tool', label: 'Tool', fields: ['server', 'tool', 'definition_hash'] },
  { value: 'fingerprint', label: 'Redacted secret', fields: ['fingerprint'] },
  { value: 'session', label: 'Session', fields: ['session'] },
  { value: 'incident', label: 'Incident', fields: ['incident'] },
] as const;

type Kind = (typeof KINDS)[number]['value'];

const PLACEHOLDER: Record<string, string> = {
  server: 'MCP server',
  tool: 'tool',
  definition_hash: 'definition hash (optional)',
  fingerprint: 'fingerprint, e.g. 9f8e7d6c',
  session: 'session key',
  incident: 'incident id',
};

function kindOf(params: Record<string, string>): Kind {
  return (KINDS.find((k) => k.fields.some((f) => params[f]))?.value ?? 'tool') as Kind;
}

/**
 * Blast radius: every agent, session and MCP request (tools/call,
 * tools/list, resources/read, …) that touched a tool (or one of its
 * definitions), a redacted secret, a session or an incident, over the
 * selected range. The subject lives in the URL, so a view is a link.
 */
export function BlastRadiusPage({ nav }: { nav: Nav }) {
  const [kind, setKind] = useState<Kind>(kindOf(nav.params));
  const [draft, setDraft] = useState<Record<string, string>>(() => ({ ...nav.params }));
  const fields = KINDS.find((k) => k.value === kind)!.fields;
  const subject: Record<string, string> = {};
  for (const f of KINDS.flatMap((k) => k.fields)) {
    if (nav.params[f]) {
      subject[f] = nav.params[f];
    }
  }
  const run = () => {
    const next: Record<string, string | undefined> = {};
    for (const f of fields) {
      next[f] = draft[f]?.trim() || undefined;
    }
    nav.go('blast', next);
  };
  return (
    <div data-testid="blast-page">
      <div style={{ display: 'flex', gap: 8, alignItems: 'center', flexWrap: 'wrap', marginBottom: 16 }}>
        <RadioButtonGroup options={KINDS.map((k) => ({ label: k.label, value: k.value }))} value={kind} onChange={(v) => setKind(v as Kind)} size="sm" />
        {fields.map((f) => (
          <Input
            key={f}
            width={f === 'definition_hash' ? 26 : 22}
            placeholder={PLACEHOLDER[f]}
            value={draft[f] ?? ''}
            onChange={(e) => setDraft({ ...draft, [f]: e.currentTarget.value })}
            onKeyDown={(e) => e.key === 'Enter' && run()}
            data-testid={`blast-input-${f}`}
          />
        ))}
        <Button size="sm" onClick={run} data-testid="blast-run">
          Show blast radius
        </Button>
      </div>
      {Object.keys(subject).length > 0 ? <BlastView nav={nav} subject={subject} /> : <p>Pick a tool, a redacted secret's fingerprint, a session or an incident.</p>}
    </div>
  );
}

function BlastView({ nav, subject }: { nav: Nav; subject: Record<string, string> }) {
  const s = useTableStyles();
  const key = JSON.stringify(subject);
  const [d, err, loading] = useLoad(() => getResource<BlastRadius>('blast-radius', { from: nav.from, to: nav.to, ...subject }), [key, nav.from, nav.to]);
  return (
    <Loading error={err} loading={loading}>
      {() =>
        d && (
          <>
            <div style={{ display: 'flex', gap: 8, marginBottom: 16 }}>
              <Stat label="Agents" value={fmtNum(d.agents.length) + (d.truncated ? '+' : '')} testId="blast-agents-count" tone={d.agents.length > 1 ? 'warn' : undefined} />
              <Stat label="Sessions" value={fmtNum(d.sessions.length) + (d.truncated ? '+' : '')} testId="blast-sessions-count" />
              <Stat label="Requests" value={fmtNum(d.agents.reduce((n, a) => n + a.calls, 0))} testId="blast-calls-count" />
              <Stat label="Searched" value={`${fmtTime(d.from)} – ${fmtTime(d.to)}`} />
            </div>
            <Section title="Requests over time" testId="blast-series">
              <CallsChart
                series={d.series.map((p) => ({ time: p.t, calls: p.calls, errors: 0, denials: 0 }))}
                from={new Date(d.from).getTime()}
                to={new Date(d.to).getTime()}
              />
            </Section>
            <Section title="Agents" testId="blast-agents">
              <table className={s.table}>
                <thead>
                  <tr>
                    <th>Agent</th>
                    <th className={s.num}>Requests</th>
                    <th className={s.num}>Sessions</th>
                    <th>First</th>
                    <th>Last</th>
                  </tr>
                </thead>
                <tbody>
                  {d.agents.map((a) => (
                    <tr key={a.agent_id} className="clickable" onClick={() => nav.go('agents', { agent: a.agent_id })}>
                      <td>
                        <a>{a.agent_id}</a>
                      </td>
                      <td className={s.num}>{fmtNum(a.calls)}</td>
                      <td className={s.num}>{fmtNum(a.sessions)}</td>
                      <td>{fmtTime(a.first_seen)}</td>
                      <td>{fmtTime(a.last_seen)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
            <Section title="Sessions" testId="blast-sessions">
              <table className={s.table}>
                <thead>
                  <tr>
                    <th>Session</th>
                    <th>Agent</th>
                    <th className={s.num}>Requests</th>
                    <th>First</th>
                    <th>Last</th>
                  </tr>
                </thead>
                <tbody>
                  {d.sessions.map((x) => (
                    <tr key={x.session_key} className="clickable" onClick={() => nav.go('sessions', { session: x.session_key, agent: x.agent_id })}>
                      <td>
                        <a>{x.session_key}</a>
                      </td>
                      <td>{x.agent_id}</td>
                      <td className={s.num}>{fmtNum(x.calls)}</td>
                      <td>{fmtTime(x.first_seen)}</td>
                      <td>{fmtTime(x.last_seen)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
            <Section title={`Requests (newest ${d.calls.length}${d.more_calls > 0 ? ` of ${fmtNum(d.calls.length + d.more_calls)}` : ''})`} testId="blast-calls">
              <EventsTable events={d.calls} testId="blast-calls-table" showAgent />
            </Section>
          </>
        )
      }
    </Loading>
  );
}
