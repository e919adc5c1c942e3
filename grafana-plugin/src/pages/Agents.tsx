
import { Button } from '@grafana/ui';
import { getResource } from '../api';
import { AgentContents, AgentDetail, AgentRow } from '../types';
import { fmtNum, fmtTime } from '../format';
import { Nav } from '../components/App';
import { Loading, Section, Severity, Status, useLoad, useLoadAfter, useTableStyles } from '../components/common';
import { AgentGraph, CallsChart } from '../components/charts';
import { EventsTable } from '../components/Events';
import { ContentCell, ContentDetail } from '../components/Content';

export function AgentsPage({ nav }: { nav: Nav }) {
  return nav.params.agent ? <AgentView nav={nav} id={nav.params.agent} /> : <AgentList nav={nav} />;
}

function AgentList({ nav }: { nav: Nav }) {
  const s = useTableStyles();
  const [d, err, loading] = useLoad(() => getResource<{ agents: AgentRow[] }>('agents', { from: nav.from, to: nav.to }), [nav.from, nav.to]);
  // The Content column costs about as much as the rest of the table: it is
  // loaded once the table is there and fills in a moment later.
  const c = useLoadAfter(d, () => getResource<AgentContents>('agent-content', { from: nav.from, to: nav.to }));
  return (
    <Loading error={err} loading={loading}>
      {() => (
        <table className={s.table} data-testid="agents-table" data-content={c.loading ? 'loading' : c.error ? 'error' : 'loaded'}>
          <thead>
            <tr>
              <th>Agent</th>
              <th>Name</th>
              <th>User</th>
              <th>Client</th>
              <th className={s.num}>Calls</th>
              <th className={s.num}>Errors</th>
              <th className={s.num}>Denials</th>
              <th className={s.num}>Servers</th>
              <th className={s.num}>Tools</th>
              <th>Content</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>
            {d?.agents.map((a) => (
              <tr key={a.agent_id} className="clickable" onClick={() => nav.go('agents', { agent: a.agent_id })} data-testid={`agent-row-${a.agent_id}`}>
                <td>
                  <a>{a.agent_id}</a>
                </td>
                <td>{a.agent_name}</td>
                <td>{a.user_id}</td>
                <td>{a.client_name}</td>
                <td className={s.num}>{fmtNum(a.calls)}</td>
                <td className={s.num}>{fmtNum(a.errors)}</td>
                <td className={s.num}>{fmtNum(a.denials)}</td>
                <td className={s.num}>{fmtNum(a.servers)}</td>
                <td className={s.num}>{fmtNum(a.tools)}</td>
                <td>
                  <ContentCell content={c.data?.content[a.agent_id]} rules={c.data?.content_rules} from={nav.from} testId={`agent-content-${a.agent_id}`} load={c} />
                </td>
                <td>{fmtTime(a.last_seen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Loading>
  );
}

function AgentView({ nav, id }: { nav: Nav; id: string }) {
  const s = useTableStyles();
  const [d, err, loading] = useLoad(() => getResource<AgentDetail>(`agents/${encodeURIComponent(id)}`, { from: nav.from, to: nav.to }), [id, nav.from, nav.to]);
  const c = useLoadAfter(d, () => getResource<AgentContents>('agent-content', { from: nav.from, to: nav.to, agent: id }));
  return (
    <div data-testid="agent-detail">
      <div className={s.toolbar}>
        <Button variant="secondary" size="sm" icon="arrow-left" onClick={() => nav.go('agents')}>
          All agents
        </Button>
        <h2 style={{ margin: 0 }}>{id}</h2>
      </div>
      <Loading error={err} loading={loading}>
        {() =>
          d && (
            <>
              <Section title="Content of the calls" testId="agent-content-section">
                <ContentDetail content={c.data?.content[id]} rules={c.data?.content_rules} from={nav.from} load={c} />
              </Section>
              <Section title="Timeline (calls per bucket)">
                <CallsChart series={d.series} from={nav.from} to={nav.to} testId="agent-timeline" />
              </Section>
              <Section title="Agent → server → tool">
                <AgentGraph graph={d.graph} />
              </Section>
              <Section title="Incidents" testId="agent-incidents">
                {d.incidents.length === 0 && <p className={s.muted}>No incidents for this agent.</p>}
                <table className={s.table}>
                  <tbody>
                    {d.incidents.map((i) => (
                      <tr key={i.incident_id} className="clickable" onClick={() => nav.go('incidents', { incident: i.incident_id })}>
                        <td>
                          <Severity value={i.severity} />
                        </td>
                        <td>
                          <Status value={i.status} />
                        </td>
                        <td>{i.title}</td>
                        <td>{fmtTime(i.last_seen)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Section>
              <Section title="Sessions">
                <table className={s.table}>
                  <tbody>
                    {d.sessions.map((x) => (
                      <tr key={x.session_key} className="clickable" onClick={() => nav.go('sessions', { session: x.session_key, agent: id })}>
                        <td>{x.session_key}</td>
                        <td className={s.num}>{x.calls} calls</td>
                        <td>{fmtTime(x.last_seen)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Section>
              <Section title="Recent calls">
                <EventsTable events={d.events} testId="agent-events" />
              </Section>
            </>
          )
        }
      </Loading>
    </div>
  );
}
