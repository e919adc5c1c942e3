import { DataSourceInstanceSettings, MetricFindValue, ScopedVars } from '@grafana/data';
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

  /** Variable query: "agents" (values seen in the last 24 h). */
  async metricFindQuery(query: string): Promise<MetricFindValue[]> {
    if (query.trim() !== 'agents' && query.trim() !== '') {
      return [];
    }
    const to = Date.now();
    const res = await this.getResource<{ agents?: Array<{ agent_id: string }> }>('agents', { from: to - 24 * 3600e3, to });
    return (res.agents ?? []).map((a) => ({ text: a.agent_id }));
  }
}
