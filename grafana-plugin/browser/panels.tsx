// Panel plugins for the test host. Grafana's core panels (timeseries, stat,
// table, nodeGraph) live in Grafana's own source, not in any npm package,
// so the host builds them from @grafana/ui's TimeSeries (uPlot) and
// BigValue, which those panels are made of, and a plain table. The node graph panel has no
// @grafana/ui component: the host draws the nodes and edges frames as a
// plain list, enough to show which nodes and edges a query returned.
import * as React from 'react';
import { DataFrame, FieldType, LinkModel, PanelPlugin, PanelProps, getDisplayProcessor, reduceField } from '@grafana/data';
import { BigValue, BigValueColorMode, BigValueGraphMode, BigValueJustifyMode, TimeSeries, useTheme2 } from '@grafana/ui';
import { LegendDisplayMode } from '@grafana/schema';

function NoData({ data }: PanelProps) {
  const err = data.errors?.[0]?.message;
  return <div data-testid="panel-no-data">{err ?? 'No data'}</div>;
}

function TimeSeriesPanel(props: PanelProps) {
  const { data, width, height, timeRange } = props;
  const frames = data.series.filter((f) => f.fields.some((x) => x.type === FieldType.time) && f.length > 0);
  if (!frames.length) {
    return <NoData {...props} />;
  }
  return (
    <div data-testid="timeseries-panel">
      <TimeSeries frames={frames} width={width} height={height} timeRange={timeRange} timeZone="utc" legend={{ displayMode: LegendDisplayMode.List, placement: 'bottom', showLegend: true, calcs: [] }} />
    </div>
  );
}

interface StatOptions {
  reduceOptions?: { calcs?: string[]; fields?: string };
}

/** A stat: the first calc over the fields named (or matching) reduceOptions.fields. */
function StatPanel(props: PanelProps<StatOptions>) {
  const { data, width, height, options } = props;
  const theme = useTheme2();
  const calc = options.reduceOptions?.calcs?.[0] ?? 'lastNotNull';
  const want = options.reduceOptions?.fields ?? '';
  const fields = data.series.flatMap((f) => f.fields).filter((f) => (want ? f.name === want || f.config.displayName === want : f.type === FieldType.number));
  if (!fields.length) {
    return <NoData {...props} />;
  }
  // count works on any field; the others sum up numbers per field, then across fields.
  let value = 0;
  for (const f of fields) {
    const r = reduceField({ field: f, reducers: [calc] })[calc];
    value += typeof r === 'number' ? r : 0;
  }
  const display = getDisplayProcessor({ field: { ...fields[0], type: FieldType.number, config: { ...fields[0].config, unit: calc === 'count' ? 'none' : fields[0].config.unit } }, theme })(value);
  return (
    <div data-testid="stat-panel" data-value={value}>
      <BigValue value={display} width={width} height={height} theme={theme} colorMode={BigValueColorMode.Value} graphMode={BigValueGraphMode.None} justifyMode={BigValueJustifyMode.Auto} />
    </div>
  );
}

/**
 * Table: the frame's fields as columns with their display values. (@grafana/ui's
 * Table fails to render in this host bundle with React error 130, an element
 * type that resolves to an object; until that is found, a plain table.)
 */
/** A cell; with a data link (field config links) its text links there, as Grafana's table does. */
function Cell({ text, link }: { text: string; link?: LinkModel }) {
  if (!link?.href) {
    return <>{text}</>;
  }
  return (
    <a href={link.href} title={link.title} target={link.target} data-testid="table-link">
      {text}
    </a>
  );
}

function TablePanel(props: PanelProps) {
  const { data, height } = props;
  const theme = useTheme2();
  const frame = data.series[0];
  if (!frame) {
    return <NoData {...props} />;
  }
  const show = frame.fields.map((f) => f.display ?? getDisplayProcessor({ field: f, theme }));
  return (
    <div data-testid="table-panel" data-rows={frame.length} style={{ height, overflow: 'auto' }}>
      <table style={{ width: '100%', borderCollapse: 'collapse' }}>
        <thead>
          <tr>
            {frame.fields.map((f) => (
              <th key={f.name} style={{ textAlign: 'left', padding: 4 }}>
                {f.config.displayName ?? f.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: frame.length }, (_, i) => (
            <tr key={i}>
              {frame.fields.map((f, j) => (
                <td key={f.name} style={{ padding: 4, borderTop: `1px solid ${theme.colors.border.weak}` }}>
                  <Cell text={show[j](f.values[i]).text} link={f.getLinks?.({ valueRowIndex: i })[0]} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function column(f: DataFrame | undefined, name: string): unknown[] {
  const field = f?.fields.find((x) => x.name === name);
  return field ? Array.from(field.values) : [];
}

/** Stand-in for Grafana's node graph panel (see the file comment). */
function NodeGraphPanel(props: PanelProps) {
  const { data, height } = props;
  const nodes = data.series.find((f) => f.name === 'nodes' || f.meta?.preferredVisualisationType === 'nodeGraph');
  const edges = data.series.find((f) => f.name === 'edges');
  if (!nodes || nodes.meta?.preferredVisualisationType !== 'nodeGraph') {
    return <NoData {...props} />;
  }
  const ids = column(nodes, 'id');
  const titles = column(nodes, 'title');
  const stats = column(nodes, 'mainStat');
  const src = column(edges, 'source');
  const dst = column(edges, 'target');
  return (
    <div data-testid="node-graph-panel" style={{ height, overflow: 'auto', fontSize: 12 }}>
      <ul>
        {ids.map((id, i) => (
          <li key={String(id)} data-testid={`node-${String(id)}`}>
            {String(titles[i])} ({String(stats[i])} calls)
          </li>
        ))}
      </ul>
      <ul>
        {src.map((s, i) => (
          <li key={i} data-testid="node-graph-edge">
            {String(s)} → {String(dst[i])}
          </li>
        ))}
      </ul>
    </div>
  );
}

function plugin(id: string, name: string, c: unknown): PanelPlugin {
  const p = new PanelPlugin(c as React.ComponentType<PanelProps>);
  p.meta = { id, name, type: 'panel', module: `core:plugin/${id}`, baseUrl: '', info: { logos: { small: '', large: '' } } } as PanelPlugin['meta'];
  return p;
}

export const panelPlugins: Record<string, PanelPlugin> = {
  timeseries: plugin('timeseries', 'Time series', TimeSeriesPanel),
  stat: plugin('stat', 'Stat', StatPanel),
  table: plugin('table', 'Table', TablePanel),
  nodeGraph: plugin('nodeGraph', 'Node graph', NodeGraphPanel),
};
