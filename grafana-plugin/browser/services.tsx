// The runtime services Grafana gives plugins and Scenes uses, for the test
// host. None answers with made-up data: queries go through the data source
// instance built from the plugin's own module and BackendSrv to the host
// server's /api/ds/query (the backend's QueryData); URLs live in the real
// locationService over the browser history.
import * as React from 'react';
import { Route, Router, Routes } from 'react-router';
import { Observable, from, isObservable, of } from 'rxjs';
import { catchError, map, startWith } from 'rxjs/operators';
import {
  DataQueryRequest,
  DataQueryResponse,
  DataSourceApi,
  DataSourceInstanceSettings,
  DataSourcePlugin,
  EventBusSrv,
  LoadingState,
  NavModelItem,
  PanelData,
  PanelPlugin,
  ScopedVars,
} from '@grafana/data';
import {
  DataSourceSrv,
  LocationServiceProvider,
  PluginPageProps,
  config,
  locationService,
  setAppEvents,
  setDataSourceSrv,
  setPluginImportUtils,
  setReturnToPreviousHook,
  setRunRequest,
  setTemplateSrv,
  toDataQueryError,
} from '@grafana/runtime';
import { Tab, TabsBar } from '@grafana/ui';
import { sceneGraph, SceneObject } from '@grafana/scenes';
import { setPluginPage } from 'grafana-runtime-plugin-page';
import { panelPlugins } from './panels';

type Load = (url: string) => Promise<unknown>;

/** Renders the app under a React Router bound to locationService's history and its provider, as Grafana does. */
export function HostRouter({ children }: { children: React.ReactNode }) {
  const history = locationService.getHistory();
  const [loc, setLoc] = React.useState(history.location);
  React.useEffect(() => history.listen((l: typeof loc) => setLoc(l)), [history]);
  return (
    <LocationServiceProvider service={locationService}>
      <Router location={loc} navigator={history as unknown as React.ComponentProps<typeof Router>['navigator']}>
        {/* Grafana mounts an app's root page at /a/<plugin id>/*: its routes are relative to that. */}
        <Routes>
          <Route path="/a/:pluginId/*" element={children} />
          <Route path="*" element={children} />
        </Routes>
      </Router>
    </LocationServiceProvider>
  );
}

function settingsOf(ref?: { uid?: string; type?: string } | string | null): DataSourceInstanceSettings | undefined {
  const all = Object.values(config.datasources);
  if (ref == null) {
    return all.find((d) => d.isDefault) ?? all[0];
  }
  if (typeof ref === 'string') {
    return all.find((d) => d.uid === ref || d.name === ref);
  }
  return all.find((d) => d.uid === ref.uid) ?? (ref.uid ? undefined : all.find((d) => d.type === ref.type));
}

/** config.datasources as Grafana's DataSourceSrv: instances built from each plugin's module.js. */
function dataSourceSrv(load: Load): DataSourceSrv {
  const instances: Record<string, Promise<DataSourceApi>> = {};
  return {
    get(ref) {
      const s = settingsOf(ref as never);
      if (!s) {
        return Promise.reject(new Error(`data source ${JSON.stringify(ref)} not found`));
      }
      instances[s.uid] ??= load('/' + s.meta.module).then((m) => {
        const plugin = (m as { plugin: DataSourcePlugin<DataSourceApi> }).plugin;
        plugin.meta = s.meta;
        const ds = new plugin.DataSourceClass(s);
        ds.components = plugin.components;
        return ds;
      });
      return instances[s.uid];
    },
    getList(filters = {}) {
      const f = filters as { pluginId?: string; type?: string | string[] };
      return Object.values(config.datasources).filter((d) => (!f.pluginId || d.type === f.pluginId) && (!f.type || [f.type].flat().includes(d.type)));
    },
    getInstanceSettings: (ref) => settingsOf(ref as never),
    reload: () => Promise.resolve(),
    registerRuntimeDataSource: () => {
      throw new Error('runtime data sources are not supported by the test host');
    },
  };
}

/**
 * Grafana's runRequest, reduced to what panels need: the data source's
 * query() result as PanelData (Loading first, then Done or Error).
 */
function runRequest(ds: DataSourceApi, request: DataQueryRequest): Observable<PanelData> {
  const base = { timeRange: request.range, request };
  const res = ds.query(request);
  const stream: Observable<DataQueryResponse> = isObservable(res) ? res : from(res as Promise<DataQueryResponse>);
  return stream.pipe(
    map((r): PanelData => {
      const errors = r.errors ?? (r.error ? [r.error] : undefined);
      return { ...base, state: errors?.length ? LoadingState.Error : (r.state ?? LoadingState.Done), series: r.data, errors, error: errors?.[0] };
    }),
    catchError((e) => {
      const error = toDataQueryError(e);
      return of<PanelData>({ ...base, state: LoadingState.Error, series: [], error, errors: [error] });
    }),
    startWith<PanelData>({ ...base, state: LoadingState.Loading, series: [] })
  );
}

/**
 * TemplateSrv: like Grafana's, a request from a scene (scopedVars.__sceneObject)
 * is interpolated by Scenes' sceneGraph against that scene's variables.
 */
const templateSrv = {
  getVariables: () => [],
  replace(target?: string, scopedVars?: ScopedVars, format?: unknown) {
    const obj = (scopedVars?.__sceneObject as { value?: { valueOf(): unknown } } | undefined)?.value?.valueOf() as SceneObject | undefined;
    if (target && obj) {
      return sceneGraph.interpolate(obj, target, scopedVars, format as never);
    }
    return target ?? '';
  },
  containsTemplate: (t?: string) => !!t && t.includes('$'),
  updateTimeRange() {},
};

/** Grafana's page chrome for app pages: title, controls and the tabs of pageNav. */
function PluginPage({ pageNav, actions, children }: PluginPageProps & { actions?: React.ReactNode }) {
  const tabs: NavModelItem[] = pageNav?.children ?? [];
  return (
    <div style={{ padding: 16 }} data-testid="plugin-page">
      <div style={{ display: 'flex', alignItems: 'center', gap: 8, flexWrap: 'wrap', marginBottom: 8 }}>
        <h1 style={{ margin: 0, marginRight: 'auto' }}>{pageNav?.text}</h1>
        {actions}
      </div>
      {tabs.length > 0 && (
        <TabsBar>
          {tabs.map((t) => (
            <Tab
              key={t.url}
              label={t.text}
              active={t.active}
              onChangeTab={() => locationService.push(t.url!)}
              data-testid={`tab-${(t.url ?? '').split('?')[0].split('/').pop()}`}
            />
          ))}
        </TabsBar>
      )}
      <div style={{ paddingTop: 16 }}>{children}</div>
    </div>
  );
}

export function installServices(load: Load) {
  setDataSourceSrv(dataSourceSrv(load));
  setRunRequest(runRequest);
  setTemplateSrv(templateSrv as never);
  setAppEvents(new EventBusSrv());
  setPluginPage(PluginPage as never);
  setReturnToPreviousHook(() => () => {});
  const cache: Record<string, PanelPlugin> = {};
  setPluginImportUtils({
    importPanelPlugin: async (id) => {
      const p = panelPlugins[id];
      if (!p) {
        throw new Error(`panel plugin ${id} is not in the test host`);
      }
      cache[id] = p;
      return p;
    },
    getPanelPluginFromCache: (id) => cache[id],
  });
}
