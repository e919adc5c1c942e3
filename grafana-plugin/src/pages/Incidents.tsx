import { useState } from 'react';
import { Alert, Button } from '@grafana/ui';
import { errorMessage, getResource, postResource } from '../api';
import { IncidentDetail, Me, PlaybookStep } from '../types';
import { fmtTime, pretty } from '../format';
import { Loading, Redacted, Section, Severity, Status, useLoad, useTableStyles } from '../components/common';
import { EventsTable } from '../components/Events';
import { agentPath } from '../scenes/agents';
import { sessionPath } from '../scenes/sessions';
import { toolPath } from '../scenes/tools';

const WAITING = ['waiting_approval', 'awaiting_approval', 'requested'];

/** What the incident view needs from the app: the user (/me) and moves to an app path (keeping time range and variables). */
export interface IncidentNav {
  me?: Me;
  go: (path: string, params?: Record<string, string | undefined>) => void;
}

/**
 * One incident (the Incidents scene's drill-down, incidents/:incident):
 * findings with evidence, linked events, actions gated by the role from
 * /me, playbook steps with approval, the audit log.
 */
export function IncidentView({ nav, id }: { nav: IncidentNav; id: string }) {
  const s = useTableStyles();
  const [d, err, loading, reload] = useLoad(() => getResource<IncidentDetail>(`incidents/${encodeURIComponent(id)}`), [id]);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string>();
  const [done, setDone] = useState<string>();
  const canAct = nav.me?.canAct === true;
  const act = async (path: string, label: string) => {
    setBusy(true);
    setActionError(undefined);
    try {
      await postResource(`incidents/${encodeURIComponent(id)}/${path}`, { note: `${label} from Grafana` });
      setDone(label);
      reload();
    } catch (e) {
      setActionError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const approve = (st: PlaybookStep) =>
    act(`playbook-runs/${encodeURIComponent(st.run_id)}/steps/${encodeURIComponent(st.step)}/approve`, `Approved ${st.step}`);
  return (
    <div data-testid="incident-detail">
      <div className={s.toolbar}>
        <Button variant="secondary" size="sm" icon="arrow-left" onClick={() => nav.go('incidents')}>
          All incidents
        </Button>
      </div>
      <Loading error={err} loading={loading && !d}>
        {() =>
          d && (
            <>
              <div className={s.toolbar}>
                <Severity value={d.incident.severity} />
                <Status value={d.incident.status} />
                <h2 style={{ margin: 0 }} data-testid="incident-title">
                  {d.incident.title}
                </h2>
              </div>
              <p>{d.incident.summary}</p>
              <p className={s.muted}>
                {d.incident.incident_id} · rule {d.incident.rule_id} · {d.incident.finding_count} findings · first {fmtTime(d.incident.first_seen)} · last{' '}
                {fmtTime(d.incident.last_seen)}
                {d.incident.updated_by && ` · updated by ${d.incident.updated_by}`}
                {d.incident.agent_id && (
                  <>
                    {' · agent '}
                    <a onClick={() => nav.go(agentPath(d.incident.agent_id))}>{d.incident.agent_id}</a>
                  </>
                )}
                {d.incident.session_key && (
                  <>
                    {' · session '}
                    <a onClick={() => nav.go(sessionPath(d.incident.session_key))}>{d.incident.session_key}</a>
                  </>
                )}
                {d.incident.server_name && d.incident.tool_name && (
                  <>
                    {' · tool '}
                    <a onClick={() => nav.go(toolPath(d.incident.server_name, d.incident.tool_name))} data-testid="incident-tool" title="Its definitions and what each changed">
                      {d.incident.server_name}/{d.incident.tool_name}
                    </a>
                  </>
                )}
                {' · '}
                <a onClick={() => nav.go('blast', { incident: d.incident.incident_id })} data-testid="incident-blast">
                  blast radius
                </a>
              </p>
              <div className={s.toolbar} data-testid="incident-actions">
                <Button
                  disabled={!canAct || busy || d.incident.status !== 'open'}
                  onClick={() => act('acknowledge', 'Acknowledged')}
                  data-testid="btn-acknowledge"
                >
                  Acknowledge
                </Button>
                <Button
                  variant="secondary"
                  disabled={!canAct || busy || d.incident.status === 'resolved'}
                  onClick={() => act('resolve', 'Resolved')}
                  data-testid="btn-resolve"
                >
                  Resolve
                </Button>
                {!canAct && (
                  <span className={s.muted} data-testid="viewer-note">
                    Your Grafana role ({nav.me?.role || 'unknown'}) can view incidents; Editor or Admin is needed to change them.
                  </span>
                )}
              </div>
              {actionError && (
                <Alert title="Action failed" severity="error">
                  {actionError}
                </Alert>
              )}
              {done && !actionError && (
                <Alert title={`${done}`} severity="success" data-testid="action-done">
                  The analyzer accepted the change.
                </Alert>
              )}
              <Section title="Findings" testId="incident-findings">
                <table className={s.table}>
                  <thead>
                    <tr>
                      <th>Time</th>
                      <th>Rule</th>
                      <th>Summary</th>
                      <th>Evidence</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.findings.map((f) => (
                      <tr key={f.finding_id}>
                        <td>{fmtTime(f.ts)}</td>
                        <td>
                          <Severity value={f.severity} /> {f.rule_id}
                        </td>
                        <td>{f.summary}</td>
                        <td>
                          <pre className={s.pre} data-testid="evidence">
                            <Redacted text={pretty(f.evidence)} />
                          </pre>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Section>
              <Section title="Linked events" testId="incident-events">
                {d.events.length === 0 ? <p className={s.muted}>No stored events are linked.</p> : <EventsTable events={d.events} showAgent />}
              </Section>
              <Section title="Playbook steps" testId="playbook-steps">
                {d.playbook_steps.length === 0 && <p className={s.muted}>No playbook ran for this incident.</p>}
                <table className={s.table}>
                  <tbody>
                    {d.playbook_steps.map((st) => (
                      <tr key={st.run_id + st.step} data-testid={`step-${st.step}`}>
                        <td>{st.playbook}</td>
                        <td>
                          <b>{st.step}</b>
                        </td>
                        <td>{st.target}</td>
                        <td>{st.status}</td>
                        <td>{fmtTime(st.ts)}</td>
                        <td>
                          {WAITING.includes(st.status) && (
                            <Button size="sm" disabled={!canAct || busy} onClick={() => approve(st)} data-testid={`approve-${st.step}`}>
                              Approve
                            </Button>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Section>
              <Section title="Audit log">
                <table className={s.table}>
                  <tbody>
                    {d.actions.map((a) => (
                      <tr key={a.action_id}>
                        <td>{fmtTime(a.ts)}</td>
                        <td>{a.kind}</td>
                        <td>{a.playbook || a.target}</td>
                        <td>{a.step}</td>
                        <td>{a.outcome}</td>
                        <td>{a.actor}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Section>
            </>
          )
        }
      </Loading>
    </div>
  );
}
