// The Sessions page from native panels: the sessions table (following the
// agent variable, which replaces the page's own agent filter) whose keys
// drill down to sessions/:session, a session's timeline: its calls in order
// as a table with their outcomes, the same calls with arguments and results
// as stored (redactions highlighted) and a link to its blast radius.
import {
  EmbeddedScene,
  PanelBuilders,
  SceneAppDrilldownView,
  SceneFlexItem,
  SceneFlexLayout,
} from '@grafana/scenes';
import { mcpQuery } from './common';
import { appLink, detailPage } from './drilldown';
import { BlastLink, CallsView, param, withParamRedirect } from './widgets';
import { stat } from './stat';

/** The URL path of a session's page. */
export function sessionPath(session: string): string {
  return `sessions/${encodeURIComponent(session)}`;
}

/** A data link from a session key field to its page. */
export const sessionLink = appLink('Session timeline', 'sessions/${__value.raw:percentencode}');

export function sessionsScene(): EmbeddedScene {
  const table = PanelBuilders.table()
    .setTitle('Sessions (newest first)')
    .setData(mcpQuery([{ queryType: 'sessions' }]))
    .setOverrides((b) => b.matchFieldsWithName('session_key').overrideLinks([sessionLink]).overrideDisplayName('Session'))
    .build();
  const scene = new EmbeddedScene({
    body: new SceneFlexLayout({ direction: 'column', children: [new SceneFlexItem({ minHeight: 480, body: table })] }),
  });
  return withParamRedirect(scene, (q) => {
    const session = param(q, 'session');
    return session ? sessionPath(session) : undefined;
  });
}

/** Outcome colours: ok green, everything else (error, tool_error, denied...) red. */
export const OUTCOME_MAPPINGS = [{ type: 'value', options: { ok: { color: 'green', index: 0 } } }, { type: 'special', options: { match: 'null+nan', result: { color: 'text', index: 1 } } }];

export function sessionScene(session: string): EmbeddedScene {
  // The whole session, whatever agent, server or tool the variables pick.
  const calls = mcpQuery([{ queryType: 'calls', session, agent: '', server: '', tool: '', limit: 10000 }]);
  const timeline = PanelBuilders.table()
    .setTitle('Calls in order')
    .setOverrides((b) =>
      b
        .matchFieldsWithNameByRegex('^(session_key|user_id|arguments|result|event_id|ts_ns)$')
        .overrideCustomFieldConfig('hideFrom' as never, { viz: true, legend: true, tooltip: true } as never)
        .matchFieldsWithName('outcome')
        .overrideColor({ mode: 'fixed', fixedColor: 'red' })
        .overrideMappings(OUTCOME_MAPPINGS as never)
        .overrideCustomFieldConfig('cellOptions' as never, { type: 'color-text' } as never)
    )
    .build();
  return new EmbeddedScene({
    $data: calls,
    body: new SceneFlexLayout({
      direction: 'column',
      children: [
        new SceneFlexLayout({
          height: 110,
          children: [
            new SceneFlexItem({ body: stat('Calls', 'event_id', 'count') }),
            new SceneFlexItem({ body: stat('Total duration', 'duration_ms', 'sum') }),
            new SceneFlexItem({ width: 200, body: new BlastLink({ params: { session }, label: 'Blast radius', testId: 'session-blast' }) }),
          ],
        }),
        new SceneFlexItem({ height: 320, body: timeline }),
        new SceneFlexItem({ body: new CallsView({ title: 'Arguments and results as stored (redactions marked)', testId: 'session-events', showAgent: true }) }),
      ],
    }),
  });
}

/** sessions/:session under the Sessions tab. */
export const sessionDrilldown: SceneAppDrilldownView = {
  routePath: 'sessions/:session',
  getPage: (match, parent) => {
    // react-router hands the parameter decoded.
    const { session } = match.params as { session: string };
    return detailPage(parent, `Session ${session}`, sessionPath(session), 'sessions/:session', () => sessionScene(session));
  },
};
