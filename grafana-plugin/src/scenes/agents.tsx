// The Agents page from native panels: the agents table whose ids drill down
// to agents/:agent, an agent's page with its calls over time, the
// agent → server → tool node graph, its servers and tools, sessions and
// incidents (tables linking to their pages), its newest calls, and what
// content its calls carry (the Content view the page had, loaded from
// /agent-content: no panel can show its per-rule explanations).
import {
  EmbeddedScene,
  PanelBuilders,
  SceneAppDrilldownView,
  SceneComponentProps,
  SceneFlexItem,
  SceneFlexLayout,
  SceneObject,
  SceneObjectBase,
  SceneObjectState,
  sceneGraph,
} from '@grafana/scenes';
import { AgentContent } from '../components/AgentContent';
import { ALL_VALUE, mcpQuery } from './common';
import { appLink, detailPage } from './drilldown';
import { sessionLink } from './sessions';
import { stat } from './stat';
import { CallsView, param, withParamRedirect } from './widgets';

/** The URL path of an agent's page. */
export function agentPath(agent: string): string {
  return `agents/${encodeURIComponent(agent)}`;
}

export function agentsScene(): EmbeddedScene {
  const table = PanelBuilders.table()
    .setTitle('Agents (busiest first)')
    .setData(mcpQuery([{ queryType: 'agents' }]))
    .setOverrides((b) =>
      b.matchFieldsWithName('agent_id').overrideLinks([appLink('Agent details', 'agents/${__value.raw:percentencode}')]).overrideDisplayName('Agent')
    )
    .build();
  const scene = new EmbeddedScene({
    body: new SceneFlexLayout({
      direction: 'column',
      children: [new SceneFlexItem({ minHeight: 360, body: table }), new SceneFlexItem({ body: new AgentContentView({}) })],
    }),
  });
  return withParamRedirect(scene, (q) => {
    const agent = param(q, 'agent');
    return agent ? agentPath(agent) : undefined;
  });
}

interface AgentContentState extends SceneObjectState {
  /** One agent (its page) or every agent of the range (the list). */
  agent?: string;
}

/** The scene's time range in epoch ms and tenant ('' for all), re-rendering when they change. */
function useScope(model: SceneObject): { from: number; to: number; tenant: string } {
  const { value } = sceneGraph.getTimeRange(model).useState();
  // Subscribed for re-rendering; read through interpolation, which gives
  // All as its allValue (getValue gives an object for it).
  sceneGraph.lookupVariable('tenant', model)?.useState();
  const tenant = sceneGraph.interpolate(model, '$tenant');
  return { from: value.from.valueOf(), to: value.to.valueOf(), tenant: tenant === ALL_VALUE || tenant === '$tenant' ? '' : tenant };
}

/**
 * What content each agent's calls carry (arguments, results, tool
 * definitions) and which rules cannot fire without it: a level per agent
 * with the explanation as its tooltip, or one agent's shares.
 */
export class AgentContentView extends SceneObjectBase<AgentContentState> {
  static Component = AgentContentRenderer;
}

function AgentContentRenderer({ model }: SceneComponentProps<AgentContentView>) {
  const { agent } = model.useState();
  return <AgentContent {...useScope(model)} agent={agent} />;
}

export function agentScene(agent: string): EmbeddedScene {
  // Everything on the page is the agent's, whatever the agent variable says.
  const scope = { agent };
  const tools = PanelBuilders.table()
    .setTitle('Servers and tools it called')
    .setData(mcpQuery([{ queryType: 'top_tools', ...scope, limit: 500 }]))
    .setOverrides((b) =>
      b.matchFieldsWithName('tool_name').overrideLinks([appLink('Tool details', 'tools/${__data.fields.server_name:percentencode}/${__value.raw:percentencode}')])
    )
    .build();
  const sessions = PanelBuilders.table()
    .setTitle('Sessions')
    .setData(mcpQuery([{ queryType: 'sessions', ...scope, limit: 50 }]))
    .setOverrides((b) => b.matchFieldsWithName('session_key').overrideLinks([sessionLink]).overrideDisplayName('Session'))
    .build();
  const incidents = PanelBuilders.table()
    .setTitle('Incidents')
    .setData(mcpQuery([{ queryType: 'incidents', ...scope, limit: 100 }]))
    .setOverrides((b) => b.matchFieldsWithName('incident_id').overrideLinks([appLink('Incident', 'incidents/${__value.raw:percentencode}')]))
    .build();
  return new EmbeddedScene({
    body: new SceneFlexLayout({
      direction: 'column',
      children: [
        // The stats and the time series share one query (their layout's $data).
        new SceneFlexLayout({
          direction: 'column',
          $data: mcpQuery([{ queryType: 'calls_over_time', ...scope }]),
          children: [
            new SceneFlexLayout({
              height: 110,
              children: [
                new SceneFlexItem({ body: stat('Calls', 'calls', 'sum') }),
                new SceneFlexItem({ body: stat('Errors', 'errors', 'sum') }),
                new SceneFlexItem({ body: stat('Denials', 'denials', 'sum') }),
              ],
            }),
            new SceneFlexItem({ height: 240, body: PanelBuilders.timeseries().setTitle('Calls over time').setUnit('short').build() }),
          ],
        }),
        new SceneFlexLayout({
          height: 360,
          children: [
            new SceneFlexItem({
              body: PanelBuilders.nodegraph().setTitle('Agent → server → tool').setData(mcpQuery([{ queryType: 'agent_graph', ...scope }])).build(),
            }),
            new SceneFlexItem({ body: tools }),
          ],
        }),
        new SceneFlexLayout({
          height: 300,
          children: [new SceneFlexItem({ body: sessions }), new SceneFlexItem({ body: incidents })],
        }),
        new SceneFlexItem({ body: new AgentContentView({ agent }) }),
        new SceneFlexItem({
          $data: mcpQuery([{ queryType: 'calls', ...scope, server: '', tool: '', limit: 20 }]),
          body: new CallsView({ title: 'Newest calls', testId: 'agent-events' }),
        }),
      ],
    }),
  });
}

/** agents/:agent under the Agents tab. */
export const agentDrilldown: SceneAppDrilldownView = {
  routePath: 'agents/:agent',
  getPage: (match, parent) => {
    // react-router hands the parameter decoded.
    const { agent } = match.params as { agent: string };
    return detailPage(parent, `Agent ${agent}`, agentPath(agent), 'agents/:agent', () => agentScene(agent));
  },
};
