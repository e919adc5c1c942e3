// Panel data plumbing and drill-down links shared by the Incidents,
// Detections and Blast radius scenes.
import { DataFrame, DataLink } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import {
  EmbeddedScene,
  SceneAppPage,
  SceneAppPageLike,
  SceneDataProvider,
  SceneDataTransformer,
  SceneFlexItem,
  SceneFlexLayout,
  SceneObject,
} from '@grafana/scenes';
import { map } from 'rxjs';
import { PageId } from '../constants';
import { BASE_URL, timeRange, variables } from './common';
import { PRESERVED_KEYS, appControls, pageUrl } from './app';

/**
 * The data of $data, else of the nearest ancestor with $data (one query
 * for several panels), through one frame operation.
 */
export function transformed(op: (frames: DataFrame[]) => DataFrame[], $data?: SceneDataProvider): SceneDataTransformer {
  return new SceneDataTransformer({ $data, transformations: [() => (source) => source.pipe(map(op))] });
}

/**
 * A data link to an app URL: path under BASE_URL (may use ${__value.raw}
 * or ${__data.fields.x}), keeping the time range and every variable.
 */
export function appLink(title: string, path: string, params = ''): DataLink {
  return { title, url: `${BASE_URL}/${path}?\${__url_time_range}&\${__all_variables}${params ? '&' + params : ''}` };
}

/**
 * A drill-down page below a tab (Scenes SceneAppPage drilldowns): its own
 * time range and shared variables synced from the URL (the link that
 * opened it carries from/to/var-*), Grafana's pickers, and a breadcrumb
 * back to the tab.
 */
export function drilldownPage(o: { title: string; url: string; routePath: string; parent: SceneAppPageLike; body: SceneObject[]; controls?: boolean }): SceneAppPage {
  return new SceneAppPage({
    title: o.title,
    url: o.url,
    routePath: o.routePath,
    getParentPage: () => o.parent,
    preserveUrlKeys: PRESERVED_KEYS,
    $timeRange: timeRange(),
    $variables: variables(),
    controls: o.controls === false ? [] : appControls(),
    getScene: () =>
      new EmbeddedScene({
        body: new SceneFlexLayout({ direction: 'column', children: o.body.map((b) => (b instanceof SceneFlexLayout || b instanceof SceneFlexItem ? b : new SceneFlexItem({ body: b }))) }),
      }),
  });
}

/** Moves to an app page (legacy URL parameters) keeping time range and variables. */
export function goPage(page: PageId, params: Record<string, string | undefined> = {}) {
  locationService.push(pageUrl(page, locationService.getSearchObject(), params));
}
