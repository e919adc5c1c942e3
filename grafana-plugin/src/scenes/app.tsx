// The app as a Scenes app: one SceneAppPage with a tab per page, Grafana's
// time and refresh pickers and the shared variables, all in the URL
// (from, to, var-tenant, ...). Pages not yet converted to native panels are
// embedded as LegacyPage, which hands them the scene's time range.
import React from 'react';
import {
  EmbeddedScene,
  SceneApp,
  SceneAppPage,
  SceneComponentProps,
  SceneControlsSpacer,
  SceneFlexLayout,
  SceneFlexItem,
  SceneObjectBase,
  SceneObjectState,
  SceneRefreshPicker,
  SceneTimePicker,
  VariableValueSelectors,
  sceneGraph,
  SceneObject,
  SceneAppDrilldownView,
} from '@grafana/scenes';
import { locationService } from '@grafana/runtime';
import { PAGES, PageId } from '../constants';
import { Me } from '../types';
import { getResource } from '../api';
import { BASE_URL, VARIABLES, timeRange, variables } from './common';

/** What a legacy page needs from the app (pages/*.tsx take it as `nav`). */
export interface Nav {
  /** Current URL search parameters. */
  params: Record<string, string>;
  /** Moves to a page with parameters, keeping time range and variables. */
  go: (page: PageId, params?: Record<string, string | undefined>) => void;
  /** Time scope in epoch ms. */
  from: number;
  to: number;
  me?: Me;
}

/** URL keys the app keeps when moving between pages. */
export function keptParams(search: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(search)) {
    if ((k === 'from' || k === 'to' || k === 'refresh' || k.startsWith('var-')) && typeof v === 'string') {
      out[k] = v;
    }
  }
  return out;
}

/** The URL of a page with the kept parameters and extra ones. */
export function pageUrl(page: PageId, search: Record<string, unknown>, extra: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams(keptParams(search));
  for (const [k, v] of Object.entries(extra)) {
    if (v) {
      q.set(k, v);
    }
  }
  const s = q.toString();
  return `${BASE_URL}/${page}${s ? '?' + s : ''}`;
}

function readParams(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(locationService.getSearchObject())) {
    if (typeof v === 'string') {
      out[k] = v;
    }
  }
  return out;
}

interface LegacyPageState extends SceneObjectState {
  page: PageId;
  render: (nav: Nav) => React.ReactNode;
}

// The signed-in user's role and rights (/me), asked once per app load.
let mePromise: Promise<Me> | undefined;
export function loadMe(): Promise<Me> {
  mePromise ??= getResource<Me>('me').catch(() => ({ login: '', role: '', canAct: false, analyzer: false }));
  return mePromise;
}

/**
 * A page still written as a React component: it gets the scene's time
 * range (re-evaluated on refresh) and the URL parameters as a Nav.
 */
export class LegacyPage extends SceneObjectBase<LegacyPageState> {
  static Component = LegacyPageRenderer;
}

function LegacyPageRenderer({ model }: SceneComponentProps<LegacyPage>) {
  const { render } = model.useState();
  const [me, setMe] = React.useState<Me>();
  React.useEffect(() => {
    let live = true;
    loadMe().then((m) => live && setMe(m));
    return () => {
      live = false;
    };
  }, []);
  const { value } = sceneGraph.getTimeRange(model).useState();
  const [params, setParams] = React.useState(readParams);
  React.useEffect(() => locationService.getHistory().listen(() => setParams(readParams())), []);
  const nav: Nav = {
    params,
    from: value.from.valueOf(),
    to: value.to.valueOf(),
    me,
    go: (page, extra) => locationService.push(pageUrl(page, locationService.getSearchObject(), extra)),
  };
  return <>{render(nav)}</>;
}

export interface AppPages {
  /** The React component of each page not yet built from panels. */
  legacy: Record<PageId, (nav: Nav) => React.ReactNode>;
  /** Pages built from panels: their scene and drill-downs (they win over legacy). */
  scenes?: Partial<Record<PageId, ScenePage>>;
}

/** A page built from panels (src/scenes/<page>.tsx). */
export interface ScenePage {
  getScene: () => EmbeddedScene;
  /** Drill-down routes below the page (routePath like 'incidents/:incident'). */
  drilldowns?: SceneAppDrilldownView[];
}

/** URL keys kept by tab links and drill-down back links: time range and variables. */
export const PRESERVED_KEYS = ['from', 'to', 'refresh', ...VARIABLES.map((v) => `var-${v}`)];

/** Grafana's pickers as the app shows them (drill-down pages show them too). */
export function appControls() {
  return [new VariableValueSelectors({}), new SceneControlsSpacer(), new SceneTimePicker({}), new SceneRefreshPicker({ intervals: ['30s', '1m', '5m'] })];
}

function legacyScene(page: PageId, render: (nav: Nav) => React.ReactNode): EmbeddedScene {
  return new EmbeddedScene({
    body: new SceneFlexLayout({
      direction: 'column',
      children: [new SceneFlexItem({ body: new LegacyPage({ page, render }) })],
    }),
  });
}

/** Builds the Scenes app: tabs in PAGES order, the first at the base URL too. */
export function buildApp({ legacy, scenes = {} }: AppPages): SceneApp {
  const tabs = PAGES.map(
    (p) =>
      new SceneAppPage({
        title: p.title,
        url: `${BASE_URL}/${p.id}`,
        routePath: p.id,
        // Time range and variables only: page-specific keys (agent, incident...) stay out of tab links.
        preserveUrlKeys: PRESERVED_KEYS,
        getScene: () => scenes[p.id]?.getScene() ?? legacyScene(p.id, legacy[p.id]),
        drilldowns: scenes[p.id]?.drilldowns,
      })
  );
  const root = new SceneAppPage({
    title: 'mcpwatch',
    url: BASE_URL,
    routePath: '*',
    $timeRange: timeRange(),
    $variables: variables(),
    controls: appControls(),
    tabs,
    getScene: () => new EmbeddedScene({ body: new SceneFlexLayout({ children: [] }) }),
  });
  return new SceneApp({ pages: [root], urlSyncOptions: { updateUrlOnInit: true, createBrowserHistorySteps: true } });
}

/** Finds the scene object's shared variable value ('' when unset). */
export function variableValue(obj: SceneObject, name: string): string {
  const v = sceneGraph.lookupVariable(name, obj);
  return v ? String(v.getValue() ?? '') : '';
}
