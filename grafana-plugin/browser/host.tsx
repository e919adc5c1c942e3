// A small Grafana-like host for browser tests: it provides the externals
// Grafana gives plugins (react, react-dom, react-router, rxjs, lodash,
// @emotion/*, @grafana/*), a BackendSrv that talks to the host server's
// /api/... routes, the runtime services Scenes uses (services.ts: the real
// locationService over the browser history, a DataSourceSrv with the
// nested data source built from its module, runRequest, TemplateSrv,
// PluginPage, panel plugins) and an AMD `define` that loads the built
// dist/module.js as Grafana does.
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import * as ReactDOMClient from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';
import * as rxjs from 'rxjs';
import * as rxjsOperators from 'rxjs/operators';
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import * as grafanaUI from '@grafana/ui';
import * as grafanaRuntime from '@grafana/runtime';
import * as grafanaSchema from '@grafana/schema';
import * as grafanaI18n from '@grafana/i18n';
import * as grafanaSelectors from '@grafana/e2e-selectors';
import * as emotionReact from '@emotion/react';
import * as reactRouter from 'react-router';
import * as reactRouterDom from 'react-router-dom';
import lodash from 'lodash';
import { Observable } from 'rxjs';
import { HostRouter, installServices } from './services';
import './fieldconfig';
import './links';

const externals: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  'react-dom/client': ReactDOMClient,
  'react/jsx-runtime': jsxRuntime,
  rxjs,
  'rxjs/operators': rxjsOperators,
  '@emotion/css': emotionCss,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUI,
  '@grafana/runtime': grafanaRuntime,
  '@grafana/schema': grafanaSchema,
  '@grafana/i18n': grafanaI18n,
  '@grafana/e2e-selectors': grafanaSelectors,
  '@emotion/react': emotionReact,
  'react-router': reactRouter,
  'react-router-dom': reactRouterDom,
  lodash,
};

type Factory = (...deps: unknown[]) => unknown;
const loaded: Record<string, unknown> = {};
let pending: ((m: unknown) => void) | undefined;

// Minimal AMD: webpack's `library: {type: 'amd'}` output calls
// define([deps...], factory) with Grafana's externals as deps.
function define(deps: string[] | Factory, factory?: Factory) {
  const f = (typeof deps === 'function' ? deps : factory) as Factory;
  const names = Array.isArray(deps) ? deps : [];
  const args = names.map((n) => {
    if (!(n in externals)) {
      throw new Error(`host does not provide external ${n}`);
    }
    return externals[n];
  });
  const mod = f(...args);
  pending?.(mod);
}
(define as unknown as { amd: object }).amd = {};
(window as unknown as { define: typeof define }).define = define;

// One module at a time (define() answers the script being loaded); the
// promise is kept so concurrent loads of one URL share it.
const loading: Record<string, Promise<unknown>> = {};
let queue: Promise<unknown> = Promise.resolve();
function loadModule(url: string): Promise<unknown> {
  loading[url] ??= queue.then(
    () =>
      new Promise((resolve, reject) => {
        pending = (m) => {
          loaded[url] = m;
          pending = undefined;
          resolve(m);
        };
        const s = document.createElement('script');
        s.src = url;
        s.onerror = () => reject(new Error(`cannot load ${url}`));
        document.head.appendChild(s);
      })
  );
  queue = loading[url].catch(() => undefined);
  return loading[url];
}

function toQuery(params?: Record<string, unknown>): string {
  if (!params) {
    return '';
  }
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) {
      q.set(k, String(v));
    }
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// BackendSrv subset plugins use: fetch() returning an Observable of
// FetchResponse, rejecting with {status, data} like Grafana's.
const backendSrv = {
  fetch<T>(opts: grafanaRuntime.BackendSrvRequest): Observable<grafanaRuntime.FetchResponse<T>> {
    return new Observable((sub) => {
      const ctrl = new AbortController();
      const url = opts.url + toQuery(opts.params as Record<string, unknown>);
      const init: RequestInit = { method: opts.method ?? 'GET', signal: ctrl.signal, headers: { Accept: 'application/json' } };
      if (opts.data !== undefined && init.method !== 'GET') {
        init.body = JSON.stringify(opts.data);
        (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
      }
      fetch(url, init)
        .then(async (res) => {
          const text = await res.text();
          let data: unknown = text;
          try {
            data = text ? JSON.parse(text) : {};
          } catch {
            /* keep text */
          }
          const r = { data: data as T, status: res.status, statusText: res.statusText, ok: res.ok, headers: res.headers, url, type: 'basic', redirected: false, config: opts } as unknown as grafanaRuntime.FetchResponse<T>;
          if (!res.ok) {
            sub.error({ status: res.status, statusText: res.statusText, data, config: opts });
            return;
          }
          sub.next(r);
          sub.complete();
        })
        .catch((e) => sub.error(e));
      return () => ctrl.abort();
    });
  },
  get(url: string, params?: Record<string, unknown>) {
    return rxjs.lastValueFrom(backendSrv.fetch({ url, params, method: 'GET' })).then((r) => r.data);
  },
  post(url: string, data?: unknown) {
    return rxjs.lastValueFrom(backendSrv.fetch({ url, data, method: 'POST' })).then((r) => r.data);
  },
};
grafanaRuntime.setBackendSrv(backendSrv as unknown as grafanaRuntime.BackendSrv);

async function main() {
  const root = document.getElementById('root')!;
  const theme = grafanaRuntime.config.theme2;
  document.body.style.background = theme.colors.background.canvas;
  document.body.style.color = theme.colors.text.primary;
  document.body.style.fontFamily = theme.typography.fontFamily;
  document.body.style.fontSize = theme.typography.fontSize + 'px';
  document.body.style.margin = '0';
  const id = 'mcpwatch-mcpwatch-app';
  const metaRes = await fetch(`/api/plugins/${id}/settings`);
  const meta = (await metaRes.json()) as grafanaData.AppPluginMeta;
  const mod = (await loadModule(`/public/plugins/${id}/module.js`)) as { plugin: grafanaData.AppPlugin };
  const plugin = mod.plugin;
  plugin.meta = meta;
  installServices(loadModule);
  const reactRoot = ReactDOMClient.createRoot(root);
  const path = window.location.pathname;
  let el: React.ReactElement;
  if (path.startsWith('/plugins/')) {
    const page = plugin.configPages?.[0];
    if (!page) {
      throw new Error('plugin has no config page');
    }
    el = React.createElement(page.body, { plugin, query: {} } as never);
  } else {
    const Root = plugin.root as React.ComponentType<grafanaData.AppRootProps>;
    el = React.createElement(Root, { meta, basename: `/a/${id}`, query: {}, path, onNavChanged: () => {} } as unknown as grafanaData.AppRootProps);
  }
  reactRoot.render(
    React.createElement(grafanaUI.ThemeContext.Provider, { value: theme }, React.createElement('div', { style: { minHeight: '100vh' } }, React.createElement(HostRouter, null, el)))
  );
  (window as unknown as { __hostReady: boolean }).__hostReady = true;
}

main().catch((e) => {
  document.getElementById('root')!.textContent = 'host error: ' + (e instanceof Error ? e.stack : String(e));
  console.error(e);
});
