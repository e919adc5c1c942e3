// Drill-down pages and the links to them. A drill-down page (agents/:agent,
// sessions/:session, tools/:server/:tool) is its own SceneAppPage: Scenes
// renders it outside its tab's scene tree, so it carries its own time range,
// variables and controls; they sync to the same URL keys (from, to, var-*),
// so moving from a list to a detail keeps the analyst's scope. Also the
// panel data plumbing the pages share.
import { DataFrame, DataLink, FieldType } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { EmbeddedScene, SceneAppPage, SceneAppPageLike, SceneDataProvider, SceneDataTransformer } from '@grafana/scenes';
import { map } from 'rxjs';
import { BASE_URL, KEPT_URL_KEYS, controls, timeRange, variables } from './common';

/** The current URL's time range and variables, as a data link suffix. */
export const KEPT_PARAMS = '${__url.params:include:' + KEPT_URL_KEYS.join(',') + '}';

/**
 * A data link to an app path with extra query parameters (both may use
 * ${__value.raw:percentencode} etc.), keeping time range and variables.
 */
export function appLink(title: string, path: string, query = ''): DataLink {
  return { title, url: `${BASE_URL}/${path}${KEPT_PARAMS}${query ? '&' + query : ''}` };
}

/** The app URL of a path with the given search object's time range and variables, plus extra parameters. */
export function appUrl(path: string, search: Record<string, unknown>, extra: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const k of KEPT_URL_KEYS) {
    const v = search[k];
    if (typeof v === 'string' && v) {
      q.set(k, v);
    }
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v) {
      q.set(k, v);
    }
  }
  const s = q.toString();
  return `${BASE_URL}/${path}${s ? '?' + s : ''}`;
}

/** A drill-down page under parent, at BASE_URL/path, with its own pickers and variables. */
export function detailPage(parent: SceneAppPageLike, title: string, path: string, routePath: string, getScene: () => EmbeddedScene): SceneAppPage {
  return new SceneAppPage({
    title,
    url: `${BASE_URL}/${path}`,
    routePath,
    getParentPage: () => parent,
    preserveUrlKeys: KEPT_URL_KEYS,
    $timeRange: timeRange(),
    $variables: variables(),
    controls: controls(),
    getScene,
  });
}

/** A frame's rows as objects keyed by field name; time fields as ISO strings. */
export function frameRows<T>(frame: DataFrame | undefined): T[] {
  if (!frame) {
    return [];
  }
  const out: T[] = [];
  for (let i = 0; i < frame.length; i++) {
    const row: Record<string, unknown> = {};
    for (const f of frame.fields) {
      const v = f.values[i];
      row[f.name] = f.type === FieldType.time && v != null ? new Date(v as number).toISOString() : v;
    }
    out.push(row as T);
  }
  return out;
}

/** Moves to an app path (agents/x, blast...) with parameters, keeping the time range and variables. */
export function goPage(path: string, params: Record<string, string | undefined> = {}) {
  locationService.push(appUrl(path, locationService.getSearchObject(), params));
}

/**
 * The data of $data, else of the nearest ancestor with $data (one query
 * for several panels), through one frame operation.
 */
export function transformed(op: (frames: DataFrame[]) => DataFrame[], $data?: SceneDataProvider): SceneDataTransformer {
  return new SceneDataTransformer({ $data, transformations: [() => (source) => source.pipe(map(op))] });
}
