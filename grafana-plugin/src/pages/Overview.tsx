
import { getResource } from '../api';
import { Overview } from '../types';
import { fmtNum, fmtPct } from '../format';
import { Nav } from '../components/App';
import { Loading, Section, Stat, Severity, useLoad, useTableStyles } from '../components/common';
import { CallsChart } from '../components/charts';

export function OverviewPage({ nav }: { nav: Nav }) {
  const s = useTableStyles();
  const [d, err, loading] = useLoad(() => getResource<Overview>('overview', { from: nav.from, to: nav.to }), [nav.from, nav.to]);
  return (
    <Loading error={err} loading={loading}>
      {() =>
        d && (
          <div data-testid="page-overview">
            <div className={s.row}>
              <Stat label="Tool calls" value={fmtNum(d.totals.calls)} testId="stat-calls" />
              <Stat label="Error rate" value={fmtPct(d.totals.error_rate)} testId="stat-error-rate" tone={d.totals.error_rate > 0.05 ? 'warn' : undefined} />
              <Stat label="Denial rate" value={fmtPct(d.totals.denial_rate)} testId="stat-denial-rate" tone={d.totals.denial_rate > 0.05 ? 'warn' : undefined} />
              <Stat label="Active agents" value={fmtNum(d.totals.active_agents)} testId="stat-agents" />
              <Stat label="MCP servers" value={fmtNum(d.totals.servers)} testId="stat-servers" />
              <Stat label="Tools" value={fmtNum(d.totals.tools)} testId="stat-tools" />
            </div>
            <Section title="Open incidents by severity" testId="open-incidents">
              <div className={s.row}>
                {['critical', 'high', 'medium', 'low', 'info'].map((sev) => (
                  <div key={sev} style={{ cursor: 'pointer' }} onClick={() => nav.go('incidents', { severity: sev })}>
                    <Stat label={sev} value={fmtNum(d.open_incidents[sev] ?? 0)} testId={`open-${sev}`} tone={(d.open_incidents[sev] ?? 0) > 0 && (sev === 'critical' || sev === 'high') ? 'bad' : undefined} />
                  </div>
                ))}
              </div>
            </Section>
            <Section title="Calls over time (ok / errors / denials)">
              <CallsChart series={d.series} from={nav.from} to={nav.to} testId="overview-chart" />
            </Section>
            <Section title="Busiest tools">
              <table className={s.table} data-testid="top-tools">
                <thead>
                  <tr>
                    <th>Server</th>
                    <th>Tool</th>
                    <th className={s.num}>Calls</th>
                    <th className={s.num}>Errors</th>
                    <th className={s.num}>Denials</th>
                    <th className={s.num}>Agents</th>
                  </tr>
                </thead>
                <tbody>
                  {d.top_tools.map((t) => (
                    <tr key={t.server_name + '/' + t.tool_name}>
                      <td>{t.server_name}</td>
                      <td>{t.tool_name}</td>
                      <td className={s.num}>{fmtNum(t.calls)}</td>
                      <td className={s.num}>{fmtNum(t.errors)}</td>
                      <td className={s.num}>{fmtNum(t.denials)}</td>
                      <td className={s.num}>{fmtNum(t.agents)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
            {Object.values(d.open_incidents).some((n) => n > 0) && (
              <p className={s.muted}>
                <Severity value="high" /> incidents need attention: see the Incidents tab.
              </p>
            )}
          </div>
        )
      }
    </Loading>
  );
}
