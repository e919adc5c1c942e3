
import { EventRow } from '../types';
import { fmtTime, pretty } from '../format';
import { Outcome, Redacted, useTableStyles } from './common';

/** Tool calls in order with arguments and results as stored (redactions highlighted). */
export function EventsTable({ events, testId, showAgent }: { events: EventRow[]; testId?: string; showAgent?: boolean }) {
  const s = useTableStyles();
  return (
    <table className={s.table} data-testid={testId}>
      <thead>
        <tr>
          <th>#</th>
          <th>Time</th>
          {showAgent && <th>Agent</th>}
          <th>Server / tool</th>
          <th>Outcome</th>
          <th>Arguments</th>
          <th>Result</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e, i) => (
          <tr key={e.event_id} data-testid="event-row">
            <td className={s.muted}>{i + 1}</td>
            <td>{fmtTime(e.ts)}</td>
            {showAgent && <td>{e.agent_id}</td>}
            <td>
              {e.server_name} / <b>{e.tool_name}</b>
              {(e.tags ?? []).filter((t) => t.startsWith('secret:')).length > 0 && (
                <div className={s.muted}>{(e.tags ?? []).filter((t) => t.startsWith('secret:')).join(', ')}</div>
              )}
            </td>
            <td>
              <Outcome value={e.outcome} />
              {e.error_type && <div className={s.muted}>{e.error_type}</div>}
            </td>
            <td>
              <pre className={s.pre}>
                <Redacted text={pretty(e.arguments)} />
              </pre>
            </td>
            <td>
              <pre className={s.pre}>
                <Redacted text={pretty(e.result)} />
              </pre>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
