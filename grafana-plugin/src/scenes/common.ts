// Shared scene helpers: every page scene takes its data source, time range
// and variables from here, so a page conversion only builds its panels.
import React from 'react';
import { DataSourceRef } from '@grafana/schema';
import { getDataSourceSrv } from '@grafana/runtime';
import {
  QueryVariable,
  SceneControlsSpacer,
  SceneObject,
  SceneQueryRunner,
  SceneRefreshPicker,
  SceneTimePicker,
  SceneTimeRange,
  SceneVariableSet,
  VariableValueSelectors,
} from '@grafana/scenes';
import { VariableRefresh } from '@grafana/data';
import { APP_ID, DS_ID } from '../constants';
import type { McpQuery } from '../datasource/types';
import type { Me } from '../types';
import { getResource } from '../api';

/** The app's base URL; pages live at BASE_URL/<page id>. */
export const BASE_URL = `/a/${APP_ID}`;

/** Time range of a fresh app (Grafana's from/to URL parameters override it). */
export const DEFAULT_FROM = 'now-6h';

/** The variables every page shares, in the order they are shown. */
export const VARIABLES = ['tenant', 'agent', 'server', 'tool'] as const;
export type VariableName = (typeof VARIABLES)[number];

/** What an "All" variable sends: the backend reads '*' as no filter. */
export const ALL_VALUE = '*';

/**
 * The mcpwatch data source: the first instance of the nested data source
 * Grafana knows (config.datasources). The app's scenes query it, so the
 * requests go through /api/ds/query to the backend's QueryData.
 */
export function mcpDatasource(): DataSourceRef {
  const ds = getDataSourceSrv().getList({ pluginId: DS_ID })[0];
  return { type: DS_ID, uid: ds?.uid ?? DS_ID };
}

export function timeRange(): SceneTimeRange {
  return new SceneTimeRange({ from: DEFAULT_FROM, to: 'now' });
}

/**
 * tenant, agent, server, tool: QueryVariables over the backend's "values"
 * query type (distinct values among the calls in the time range and the
 * reader's tenants), each with All; agent, server and tool follow $tenant.
 * Synced to the URL as var-tenant etc.
 */
export function variables(): SceneVariableSet {
  const v = (name: VariableName, label: string) =>
    new QueryVariable({
      name,
      label,
      datasource: mcpDatasource(),
      query: name === 'tenant' ? 'values(tenant)' : `values(${name}, $tenant)`,
      includeAll: true,
      defaultToAll: true,
      allValue: ALL_VALUE,
      refresh: VariableRefresh.onTimeRangeChanged,
    });
  return new SceneVariableSet({
    variables: [v('tenant', 'Tenant'), v('agent', 'Agent'), v('server', 'Server'), v('tool', 'Tool')],
  });
}

/** The page controls: variable selectors, Grafana's time and refresh pickers. */
export function controls(): SceneObject[] {
  return [new VariableValueSelectors({}), new SceneControlsSpacer(), new SceneTimePicker({}), new SceneRefreshPicker({ intervals: ['30s', '1m', '5m'] })];
}

/** URL keys a page keeps when it links to another: time range and variables. */
export const KEPT_URL_KEYS = ['from', 'to', 'refresh', ...VARIABLES.map((v) => `var-${v}`)];

/** Query fields that carry the shared variables (interpolated by Grafana's template service). */
export const VARIABLE_FIELDS: Pick<McpQuery, VariableName> = {
  tenant: '$tenant',
  agent: '$agent',
  server: '$server',
  tool: '$tool',
};

/**
 * A query runner on the mcpwatch data source; each query gets the shared
 * variables unless it sets them. It reruns when the time range or a
 * variable changes.
 */
export function mcpQuery(queries: Array<Omit<McpQuery, 'refId'> & { refId?: string }>, maxDataPoints?: number): SceneQueryRunner {
  return new SceneQueryRunner({
    datasource: mcpDatasource(),
    maxDataPoints,
    queries: queries.map((q, i) => ({ refId: q.refId ?? String.fromCharCode(65 + i), ...VARIABLE_FIELDS, ...q })),
  });
}

// The signed-in user's role and rights (/me), asked once per app load.
let mePromise: Promise<Me> | undefined;
export function loadMe(): Promise<Me> {
  mePromise ??= getResource<Me>('me').catch(() => ({ login: '', role: '', canAct: false, analyzer: false }));
  return mePromise;
}

/** The signed-in user's rights (/me) in a component: undefined until loaded. */
export function useMe(): Me | undefined {
  const [me, setMe] = React.useState<Me>();
  React.useEffect(() => {
    let live = true;
    loadMe().then((m) => live && setMe(m));
    return () => {
      live = false;
    };
  }, []);
  return me;
}
