
import { useTheme2 } from '@grafana/ui';
import { getResource } from '../api';
import { RuleHits, RuleHitsPoint } from '../types';
import { fmtNum, fmtTime } from '../format';
import { Nav } from '../components/App';
import { Loading, Severity, useLoad, useTableStyles } from '../components/common';

function Spark({ points, from, to }: { points: RuleHitsPoint[]; from: number; to: number }) {
  const theme = useTheme2();
  const w = 240;
  const h = 28;
  const max = Math.max(1, ...points.map((p) => p.hits));
  return (
    <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`}>
      <line x1={0} y1={h - 1} x2={w} y2={h - 1} stroke={theme.colors.border.weak} />
      {points.map((p) => {
        const x = ((new Date(p.time).getTime() - from) / (to - from)) * w;
        const bh = Math.max(2, (p.hits / max) * (h - 2));
        return <rect key={p.time} x={x} y={h - 1 - bh} width={3} height={bh} fill={theme.colors.warning.main} />;
      })}
    </svg>
  );
}

export function DetectionsPage({ nav }: { nav: Nav }) {
  const s = useTableStyles();
  const [d, err, loading] = useLoad(
    () => getResource<{ rules: RuleHits[]; series: RuleHitsPoint[] }>('detections', { from: nav.from, to: nav.to }),
    [nav.from, nav.to]
  );
  return (
    <Loading error={err} loading={loading}>
      {() =>
        d && (
          <table className={s.table} data-testid="detections-table">
            <thead>
              <tr>
                <th>Severity</th>
                <th>Rule</th>
                <th className={s.num}>Hits</th>
                <th className={s.num}>Incidents</th>
                <th>Hits over time</th>
                <th>Last hit</th>
              </tr>
            </thead>
            <tbody>
              {d.rules.map((r) => (
                <tr key={r.rule_id} className="clickable" onClick={() => nav.go('incidents', {})} data-testid={`rule-row-${r.rule_id}`}>
                  <td>
                    <Severity value={r.severity} />
                  </td>
                  <td>
                    <b>{r.rule_id}</b>
                    <div className={s.muted}>{r.rule_title}</div>
                  </td>
                  <td className={s.num}>{fmtNum(r.hits)}</td>
                  <td className={s.num}>{fmtNum(r.incidents)}</td>
                  <td>
                    <Spark points={d.series.filter((p) => p.rule_id === r.rule_id)} from={nav.from} to={nav.to} />
                  </td>
                  <td>{fmtTime(r.last_hit)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Loading>
  );
}
