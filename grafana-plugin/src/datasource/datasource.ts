import { DataFrame, DataQueryRequest, DataSourceInstanceSettings, LegacyMetricFindQueryOptions, MetricFindValue, ScopedVars, dateTime } from '@grafana/data';
import { lastValueFrom } from 'rxjs';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';
import { DsJsonData, McpQuery, TEXT_FIELDS } from './types';

/**
 * A backend data source: Grafana sends its queries (/api/ds/query, alert
 * and recording rules included) to the plugin backend with this data
 * source's own settings (ClickHouse, tenantAccess); the backend answers one
 * response per RefID. Resources (variable values) and the health check go
 * to the same backend.
 */
export class DataSource extends DataSourceWithBackend<McpQuery, DsJsonData> {
  constructor(settings: DataSourceInstanceSettings<DsJsonData>) {
    super(settings);
  }

  getDefaultQuery(): Partial<McpQuery> {
    return { queryType: 'calls_over_time' };
  }

  applyTemplateVariables(q: McpQuery, scopedVars: ScopedVars): McpQuery {
    const ts = getTemplateSrv();
    const out: McpQuery = { ...q };
    for (const f of TEXT_FIELDS) {
      const v = q[f];
      if (typeof v === 'string' && v !== '') {
        out[f] = ts.replace(v, scopedVars);
      }
    }
    return out;
  }

  /**
   * Variable query: "values(<tenant|agent|server|tool>[, <tenant>])" lists
   * the distinct values among the calls in the variable's time range (and
   * the reader's tenants) through the backend's "values" query; the older
   * "agents" query lists agents of the last 24 h.
   */
  async metricFindQuery(query: string, options?: LegacyMetricFindQueryOptions): Promise<MetricFindValue[]> {
    const q = getTemplateSrv().replace((query ?? '').trim(), options?.scopedVars);
    const m = parseValuesQuery(q);
    if (!m) {
      return [];
    }
    const to = dateTime();
    const range = options?.range ?? { from: dateTime(to.valueOf() - 24 * 3600e3), to, raw: { from: 'now-24h', to: 'now' } };
    const req = {
      requestId: 'mcpwatch-values',
      app: 'mcpwatch',
      interval: '1m',
      intervalMs: 60000,
      range,
      scopedVars: options?.scopedVars ?? {},
      targets: [{ refId: 'values', queryType: 'values', field: m.field, tenant: m.tenant }],
      timezone: 'utc',
      startTime: Date.now(),
    } as DataQueryRequest<McpQuery>;
    const res = await lastValueFrom(this.query(req));
    if (res.errors?.length) {
      throw new Error(res.errors[0].message ?? 'values query failed');
    }
    const frame = res.data[0] as DataFrame | undefined;
    const values = frame?.fields[0]?.values ?? [];
    return Array.from(values, (v) => ({ text: String(v), value: String(v) }));
  }
}

/** Parses a variable query; undefined when it is not one. */
export function parseValuesQuery(q: string): { field: string; tenant?: string } | undefined {
  if (q === 'agents' || q === '') {
    return { field: 'agent' };
  }
  const m = /^values\(\s*(tenant|agent|server|tool)\s*(?:,\s*([^)]*?)\s*)?\)$/.exec(q);
  if (!m) {
    return undefined;
  }
  return { field: m[1], tenant: m[2] || undefined };
}
