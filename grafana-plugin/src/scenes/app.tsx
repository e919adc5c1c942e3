// The app as a Scenes app: one SceneAppPage with a tab per page, Grafana's
// time and refresh pickers and the shared variables, all in the URL
// (from, to, var-tenant, ...). Every page is built from native panels
// (src/scenes/<page>.ts(x)), with drill-down pages below its tab.
import {
  EmbeddedScene,
  SceneApp,
  SceneAppDrilldownView,
  SceneAppPage,
  SceneFlexLayout,
} from '@grafana/scenes';
import { PAGES, PageId } from '../constants';
import { BASE_URL, KEPT_URL_KEYS, controls, timeRange, variables } from './common';
import { overviewScene } from './overview';
import { agentDrilldown, agentsScene } from './agents';
import { sessionDrilldown, sessionsScene } from './sessions';
import { incidentDrilldown, incidentsScene } from './incidents';
import { detectionsScene, ruleDrilldown } from './detections';
import { toolDrilldown, toolsScene } from './tools';
import { blastScene } from './blast';

/** Each page's scene, and its drill-down pages. */
const NATIVE: Record<PageId, () => EmbeddedScene> = {
  overview: overviewScene,
  agents: agentsScene,
  sessions: sessionsScene,
  incidents: incidentsScene,
  detections: detectionsScene,
  tools: toolsScene,
  blast: blastScene,
};
const DRILLDOWNS: Partial<Record<PageId, SceneAppDrilldownView[]>> = {
  agents: [agentDrilldown],
  sessions: [sessionDrilldown],
  incidents: [incidentDrilldown],
  detections: [ruleDrilldown],
  tools: [toolDrilldown],
};

/** Builds the Scenes app: tabs in PAGES order, the first at the base URL too. */
export function buildApp(): SceneApp {
  const tabs = PAGES.map(
    (p) =>
      new SceneAppPage({
        title: p.title,
        url: `${BASE_URL}/${p.id}`,
        routePath: p.id,
        // Time range and variables only: page-specific keys (agent, incident...) stay out of tab links.
        preserveUrlKeys: KEPT_URL_KEYS,
        getScene: NATIVE[p.id],
        drilldowns: DRILLDOWNS[p.id],
      })
  );
  const root = new SceneAppPage({
    title: 'mcpwatch',
    url: BASE_URL,
    routePath: '*',
    $timeRange: timeRange(),
    $variables: variables(),
    controls: controls(),
    tabs,
    getScene: () => new EmbeddedScene({ body: new SceneFlexLayout({ children: [] }) }),
  });
  return new SceneApp({ pages: [root], urlSyncOptions: { updateUrlOnInit: true, createBrowserHistorySteps: true } });
}
