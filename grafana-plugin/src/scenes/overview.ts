// The Overview page from native panels: every panel is a VizPanel on a
// SceneQueryRunner over the mcpwatch data source (mcpQuery), so it follows
// the time range and the tenant/agent/server/tool variables. Copy this
// shape for the other pages.
import { EmbeddedScene, PanelBuilders, SceneFlexItem, SceneFlexLayout } from '@grafana/scenes';
import { mcpQuery } from './common';
import { stat } from './stat';

export function overviewScene(): EmbeddedScene {
  const calls = mcpQuery([{ queryType: 'calls_over_time' }]);
  const agents = mcpQuery([{ queryType: 'top_agents', limit: 100 }]);
  return new EmbeddedScene({
    body: new SceneFlexLayout({
      direction: 'column',
      children: [
        new SceneFlexLayout({
          height: 110,
          children: [
            new SceneFlexItem({ body: stat('Tool calls', 'calls', 'sum', calls) }),
            new SceneFlexItem({ body: stat('Errors', 'errors', 'sum', calls) }),
            new SceneFlexItem({ body: stat('Denials', 'denials', 'sum', calls) }),
            new SceneFlexItem({ body: stat('Active agents', 'agent_id', 'count', agents) }),
          ],
        }),
        new SceneFlexItem({
          height: 260,
          body: PanelBuilders.timeseries().setTitle('Calls over time').setData(calls).setUnit('short').build(),
        }),
        new SceneFlexLayout({
          height: 320,
          children: [
            new SceneFlexItem({ body: PanelBuilders.table().setTitle('Busiest tools').setData(mcpQuery([{ queryType: 'top_tools', limit: 100 }])).build() }),
            new SceneFlexItem({ body: PanelBuilders.table().setTitle('Busiest agents').setData(agents).build() }),
          ],
        }),
        new SceneFlexItem({
          height: 420,
          body: PanelBuilders.nodegraph().setTitle('Agents → servers → tools').setData(mcpQuery([{ queryType: 'agent_graph' }])).build(),
        }),
        new SceneFlexItem({
          height: 300,
          body: PanelBuilders.table().setTitle('Open incidents').setData(mcpQuery([{ queryType: 'incidents', status: 'open' }])).build(),
        }),
      ],
    }),
  });
}
