// Panel plugins for the test host. Grafana's core panels (timeseries, stat,
// table, nodeGraph) live in Grafana's own source, not in any npm package,
// so the host builds them from @grafana/ui's TimeSeries (uPlot) and
// BigValue, which those panels are made of, and a plain table. The node graph panel has no
// @grafana/ui component: the host draws the nodes and edges frames as a
// plain list, enough to show which nodes and edges a query returned.
import * as React from 'react';
import { DataFrame, FieldConfigPropertyItem, FieldType, PanelPlugin, PanelProps, getDisplayProcessor, reduceField, standardFieldConfigEditorRegistry } from '@grafana/data';
import { BigValue, BigValueColorMode, BigValueGraphMode, BigValueJustifyMode, TimeSeries, useTheme2 } from '@grafana/ui';
import { LegendDisplayMode } from '@grafana/schema';
import { locationService } from '@grafana/runtime';

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
function TablePanel(props: PanelProps) {
  const { data, height } = props;
  const theme = useTheme2();
  const frame = data.series[0];
  if (!frame) {
    return <NoData {...props} />;
  }
  // As Grafana's table: fields hidden by an override (custom.hideFrom.viz)
  // are left out, data links (field.getLinks, interpolated by the panel)
  // make a cell a link that moves within the app, color-text cells take
  // their display colour.
  const fields = frame.fields.filter((f) => !f.config.custom?.hideFrom?.viz);
  const show = fields.map((f) => f.display ?? getDisplayProcessor({ field: f, theme }));
  return (
    <div data-testid="table-panel" data-rows={frame.length} style={{ height, overflow: 'auto' }}>
      <table style={{ width: '100%', borderCollapse: 'collapse' }}>
        <thead>
          <tr>
            {fields.map((f) => (
              <th key={f.name} style={{ textAlign: 'left', padding: 4 }}>
                {f.config.displayName ?? f.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: frame.length }, (_, i) => (
            <tr key={i} data-testid="table-row">
              {fields.map((f, j) => {
                const d = show[j](f.values[i]);
                const link = f.getLinks?.({ valueRowIndex: i })[0];
                const color = f.config.custom?.cellOptions?.type === 'color-text' ? d.color : undefined;
                return (
                  <td key={f.name} data-field={f.name} style={{ padding: 4, borderTop: `1px solid ${theme.colors.border.weak}`, color }}>
                    {link ? (
                      <a
                        href={link.href}
                        title={link.title}
                        onClick={(e) => {
                          e.preventDefault();
                          locationService.push(link.href);
                        }}
                      >
                        {d.text}
                      </a>
                    ) : (
                      d.text
                    )}
                  </td>
                );
              })}
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

/**
 * Grafana core fills the registry of standard field options (unit, links,
 * mappings...) from its own source; without it applyFieldOverrides drops
 * every default and override a panel sets. The host registers the options
 * the app's panels use, each passing its value through as Grafana's do
 * (no editors: the host has no panel editor).
 */
function option(id: string, isCustom = false): FieldConfigPropertyItem {
  return { id, path: id, name: id, isCustom, editor: () => null, override: () => null, process: (v: unknown) => v, shouldApply: () => true } as FieldConfigPropertyItem;
}
standardFieldConfigEditorRegistry.setInit(() => ['unit', 'decimals', 'min', 'max', 'displayName', 'noValue', 'color', 'thresholds', 'mappings', 'links'].map((id) => option(id)));

function plugin(id: string, name: string, c: unknown, custom: string[] = []): PanelPlugin {
  const p = new PanelPlugin(c as React.ComponentType<PanelProps>).useFieldConfig({
    // Grafana's table panel has these custom options (hide a field, cell type).
    useCustomConfig: (b) => custom.forEach((k) => b.addCustomEditor({ ...option(k, true), id: k, path: k, name: k, editor: () => null, override: () => null })),
  });
  p.meta = { id, name, type: 'panel', module: `core:plugin/${id}`, baseUrl: '', info: { logos: { small: '', large: '' } } } as PanelPlugin['meta'];
  return p;
}

export const panelPlugins: Record<string, PanelPlugin> = {
  timeseries: plugin('timeseries', 'Time series', TimeSeriesPanel),
  stat: plugin('stat', 'Stat', StatPanel),
  table: plugin('table', 'Table', TablePanel, ['hideFrom', 'cellOptions']),
  nodeGraph: plugin('nodeGraph', 'Node graph', NodeGraphPanel),
};
