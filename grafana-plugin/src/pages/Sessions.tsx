
import { Button, Input } from '@grafana/ui';
import { getResource } from '../api';
import { EventRow, SessionRow } from '../types';
import { fmtNum, fmtTime } from '../format';
import { Nav } from '../components/App';
import { Loading, useLoad, useTableStyles } from '../components/common';
import { EventsTable } from '../components/Events';

export function SessionsPage({ nav }: { nav: Nav }) {
  return nav.params.session ? <SessionView nav={nav} id={nav.params.session} /> : <SessionList nav={nav} />;
}

function SessionList({ nav }: { nav: Nav }) {
  const s = useTableStyles();
  const agent = nav.params.agent ?? '';
  const [d, err, loading] = useLoad(
    () => getResource<{ sessions: SessionRow[] }>('sessions', { from: nav.from, to: nav.to, agent }),
    [nav.from, nav.to, agent]
  );
  return (
    <>
      <div className={s.toolbar}>
        <Input
          width={30}
          placeholder="Filter by agent id"
          defaultValue={agent}
          onKeyDown={(e) => e.key === 'Enter' && nav.go('sessions', { agent: e.currentTarget.value })}
          data-testid="sessions-agent-filter"
        />
      </div>
      <Loading error={err} loading={loading}>
        {() => (
          <table className={s.table} data-testid="sessions-table">
            <thead>
              <tr>
                <th>Session</th>
                <th>Agent</th>
                <th>User</th>
                <th className={s.num}>Calls</th>
                <th className={s.num}>Failed</th>
                <th className={s.num}>With redactions</th>
                <th>First</th>
                <th>Last</th>
              </tr>
            </thead>
            <tbody>
              {d?.sessions.map((x) => (
                <tr key={x.session_key} className="clickable" onClick={() => nav.go('sessions', { session: x.session_key, agent: x.agent_id })} data-testid={`session-row-${x.session_key}`}>
                  <td>
                    <a>{x.session_key}</a>
                  </td>
                  <td>{x.agent_id}</td>
                  <td>{x.user_id}</td>
                  <td className={s.num}>{fmtNum(x.calls)}</td>
                  <td className={s.num}>{fmtNum(x.failures)}</td>
                  <td className={s.num}>{fmtNum(x.redacted)}</td>
                  <td>{fmtTime(x.first_seen)}</td>
                  <td>{fmtTime(x.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </>
  );
}

function SessionView({ nav, id }: { nav: Nav; id: string }) {
  const s = useTableStyles();
  const agent = nav.params.agent ?? '';
  const [d, err, loading] = useLoad(
    () => getResource<{ events: EventRow[] }>(`sessions/${encodeURIComponent(id)}`, { from: nav.from, to: nav.to, agent }),
    [id, agent, nav.from, nav.to]
  );
  return (
    <div data-testid="session-detail">
      <div className={s.toolbar}>
        <Button variant="secondary" size="sm" icon="arrow-left" onClick={() => nav.go('sessions')}>
          All sessions
        </Button>
        <h2 style={{ margin: 0 }}>Session {id}</h2>
        {agent && <span className={s.muted}>agent {agent}</span>}
        <Button variant="secondary" size="sm" icon="share-alt" onClick={() => nav.go('blast', { session: id })} data-testid="session-blast">
          Blast radius
        </Button>
      </div>
      <Loading error={err} loading={loading}>
        {() => d && <EventsTable events={d.events} testId="session-events" showAgent />}
      </Loading>
    </div>
  );
}
