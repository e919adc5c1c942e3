import {
  DataQueryRequest,
  DataQueryResponse,
  DataSourceApi,
  DataSourceInstanceSettings,
  MetricFindValue,
  ScopedVars,
} from '@grafana/data';
import { BackendDataSourceResponse, getBackendSrv, getTemplateSrv, toDataQueryResponse } from '@grafana/runtime';
import { lastValueFrom, Observable, from } from 'rxjs';
import { map } from 'rxjs/operators';
import { APP_ID } from '../constants';
import { McpQuery, TEXT_FIELDS } from './types';

/**
 * The data source has no backend of its own: it forwards queries to the
 * mcpwatch app's backend (/resources/query), which runs them against
 * ClickHouse with the app's settings and answers in /api/ds/query format.
 */
export class DataSource extends DataSourceApi<McpQuery> {
  constructor(settings: DataSourceInstanceSettings) {
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

  query(req: DataQueryRequest<McpQuery>): Observable<DataQueryResponse> {
    const queries = req.targets
      .filter((t) => !t.hide)
      .map((t) => ({ ...this.applyTemplateVariables(t, req.scopedVars), intervalMs: req.intervalMs, maxDataPoints: req.maxDataPoints }));
    return from(
      lastValueFrom(
        getBackendSrv().fetch<BackendDataSourceResponse>({
          url: `/api/plugins/${APP_ID}/resources/query`,
          method: 'POST',
          data: { from: String(req.range.from.valueOf()), to: String(req.range.to.valueOf()), queries },
          requestId: req.requestId,
        })
      )
    ).pipe(map((res) => toDataQueryResponse(res, queries)));
  }

  /** Variable query: "agents" or "servers" (values seen in the last 24 h). */
  async metricFindQuery(query: string): Promise<MetricFindValue[]> {
    const to = Date.now();
    const res = await lastValueFrom(
      getBackendSrv().fetch<{ agents?: Array<{ agent_id: string }> }>({
        url: `/api/plugins/${APP_ID}/resources/agents`,
        method: 'GET',
        params: { from: to - 24 * 3600e3, to },
      })
    );
    if (query.trim() === 'agents' || query.trim() === '') {
      return (res.data.agents ?? []).map((a) => ({ text: a.agent_id }));
    }
    return [];
  }

  async testDatasource() {
    try {
      const res = await lastValueFrom(
        getBackendSrv().fetch<{ status: string; message: string }>({ url: `/api/plugins/${APP_ID}/health`, method: 'GET', showErrorAlert: false })
      );
      return { status: res.data.status === 'OK' ? 'success' : 'error', message: res.data.message };
    } catch (e) {
      const err = e as { data?: { message?: string } };
      return { status: 'error', message: err.data?.message ?? 'mcpwatch app is not enabled or its backend is not reachable' };
    }
  }
}
