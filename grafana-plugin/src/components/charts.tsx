
import { useTheme2 } from '@grafana/ui';
import { Graph, GraphNode, Point } from '../types';
import { fmtNum } from '../format';

/** Stacked bars of ok / failed / denied calls per bucket (own SVG). */
export function CallsChart({ series, from, to, height = 160, testId }: { series: Point[]; from: number; to: number; height?: number; testId?: string }) {
  const theme = useTheme2();
  const w = 900;
  const max = Math.max(1, ...series.map((p) => p.calls));
  // Bars sit at their bucket's time within [from, to]; the bucket width is
  // the smallest gap between points (at least 1 px).
  const times = series.map((p) => new Date(p.time).getTime());
  let step = to - from;
  for (let i = 1; i < times.length; i++) {
    step = Math.min(step, times[i] - times[i - 1]);
  }
  const xOf = (t: number) => ((t - from) / (to - from)) * w;
  const bw = Math.max(1, (step / (to - from)) * w);
  return (
    <svg viewBox={`0 0 ${w} ${height + 20}`} width="100%" role="img" aria-label="calls over time" data-testid={testId}>
      {series.map((p, i) => {
        const ok = p.calls - p.errors - p.denials;
        const h = (v: number) => (v / max) * height;
        const x = xOf(times[i]) + 1;
        const bwi = Math.max(1, bw - 2);
        let y = height;
        const parts: Array<[number, string, string]> = [
          [ok, theme.colors.success.main, 'ok'],
          [p.errors, theme.colors.error.main, 'errors'],
          [p.denials, theme.visualization.getColorByName('purple'), 'denials'],
        ];
        return (
          <g key={i}>
            <title>{`${new Date(p.time).toISOString()}: ${p.calls} calls, ${p.errors} errors, ${p.denials} denials`}</title>
            {parts.map(([v, c, k]) => {
              y -= h(v);
              return v > 0 ? <rect key={k} x={x} y={y} width={bwi} height={h(v)} fill={c} /> : null;
            })}
          </g>
        );
      })}
      <line x1={0} y1={height} x2={w} y2={height} stroke={theme.colors.border.weak} />
      <text x={0} y={height + 16} fill={theme.colors.text.secondary} fontSize={11}>
        {new Date(from).toISOString().slice(0, 16).replace('T', ' ') + 'Z'}
      </text>
      <text x={w} y={height + 16} fill={theme.colors.text.secondary} fontSize={11} textAnchor="end">
        {new Date(to).toISOString().slice(0, 16).replace('T', ' ') + 'Z'}
      </text>
      <text x={4} y={12} fill={theme.colors.text.secondary} fontSize={11}>
        max {fmtNum(max)}/bucket
      </text>
    </svg>
  );
}

/**
 * Agent → server → tool graph. Grafana's node graph panel cannot be rendered
 * outside a running Grafana (PanelRenderer needs Grafana's panel registry),
 * so the app page draws the same nodes/edges frames as a layered SVG; the
 * dashboards use the real node graph panel with the agent_graph query.
 */
export function AgentGraph({ graph }: { graph: Graph }) {
  const theme = useTheme2();
  const cols: Record<string, GraphNode[]> = { agent: [], server: [], tool: [] };
  for (const n of graph.nodes) {
    (cols[n.kind] ?? cols.tool).push(n);
  }
  const rowH = 56;
  const colX: Record<string, number> = { agent: 90, server: 420, tool: 750 };
  const rows = Math.max(cols.agent.length, cols.server.length, cols.tool.length, 1);
  const h = rows * rowH + 20;
  const pos: Record<string, [number, number]> = {};
  for (const k of Object.keys(cols)) {
    const list = cols[k];
    const off = (h - list.length * rowH) / 2;
    list.forEach((n, i) => (pos[n.id] = [colX[k], off + i * rowH + rowH / 2]));
  }
  const maxEdge = Math.max(1, ...graph.edges.map((e) => e.mainStat));
  return (
    <svg viewBox={`0 0 900 ${h}`} width="100%" height={h} data-testid="agent-graph" role="img" aria-label="agent to server to tool graph">
      {graph.edges.map((e) => {
        const a = pos[e.source];
        const b = pos[e.target];
        if (!a || !b) {
          return null;
        }
        return (
          <g key={e.id}>
            <line x1={a[0] + 70} y1={a[1]} x2={b[0] - 70} y2={b[1]} stroke={theme.colors.border.strong} strokeWidth={1 + (4 * e.mainStat) / maxEdge} />
            <text x={(a[0] + b[0]) / 2} y={(a[1] + b[1]) / 2 - 4} fontSize={11} fill={theme.colors.text.secondary} textAnchor="middle">
              {e.mainStat}
            </text>
          </g>
        );
      })}
      {graph.nodes.map((n) => {
        const p = pos[n.id];
        const fail = n.errors > 0;
        return (
          <g key={n.id} data-testid={`graph-node-${n.id}`}>
            <rect
              x={p[0] - 70}
              y={p[1] - 22}
              width={140}
              height={44}
              rx={8}
              fill={theme.colors.background.secondary}
              stroke={n.kind === 'agent' ? theme.colors.primary.main : fail ? theme.colors.warning.main : theme.colors.border.medium}
            />
            <text x={p[0]} y={p[1] - 4} fontSize={12} fill={theme.colors.text.primary} textAnchor="middle">
              {n.title.length > 20 ? n.title.slice(0, 19) + '…' : n.title}
            </text>
            <text x={p[0]} y={p[1] + 13} fontSize={10} fill={theme.colors.text.secondary} textAnchor="middle">
              {`${n.subTitle} · ${n.mainStat} calls${fail ? ` · ${n.errors} failed` : ''}`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
