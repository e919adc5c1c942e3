// The Tools page from native panels: the tool inventory as a table whose
// tool names drill down to tools/:server/:tool, a tool's page with its
// calls over time, its definition history (a table whose hashes link to the
// blast radius of that definition) and the definition diff the page showed
// before (DefinitionHistory, fed by the same query's frame).
import {
  EmbeddedScene,
  PanelBuilders,
  SceneAppDrilldownView,
  SceneComponentProps,
  SceneFlexItem,
  SceneFlexLayout,
  SceneObjectBase,
  SceneObjectState,
  sceneGraph,
} from '@grafana/scenes';
import { ToolDefinition } from '../types';
import { DefinitionHistory } from '../components/ToolDiff';
import { Section } from '../components/common';
import { mcpQuery } from './common';
import { appLink, detailPage, frameRows } from './drilldown';
import { BlastLink, param, withParamRedirect } from './widgets';

/** The URL path of a tool's page. */
export function toolPath(server: string, tool: string): string {
  return `tools/${encodeURIComponent(server)}/${encodeURIComponent(tool)}`;
}

export function toolsScene(): EmbeddedScene {
  const table = PanelBuilders.table()
    .setTitle('Tool inventory')
    .setData(mcpQuery([{ queryType: 'tools' }]))
    .setOverrides((b) =>
      b
        .matchFieldsWithName('tool_name')
        .overrideLinks([appLink('Definition history', 'tools/${__data.fields.server_name:percentencode}/${__value.raw:percentencode}')])
        .matchFieldsWithName('definition_hash')
        .overrideDisplayName('Current definition')
        // More than one definition: the tool changed, as the analyzer's rule judges it.
        .matchFieldsWithName('versions')
        .overrideThresholds({ mode: 'absolute' as never, steps: [{ value: -Infinity, color: 'text' }, { value: 2, color: 'red' }] })
        .overrideCustomFieldConfig('cellOptions' as never, { type: 'color-text' } as never)
    )
    .build();
  const scene = new EmbeddedScene({
    body: new SceneFlexLayout({ direction: 'column', children: [new SceneFlexItem({ minHeight: 420, body: table })] }),
  });
  return withParamRedirect(scene, (q) => {
    const server = param(q, 'server');
    const tool = param(q, 'tool');
    return server && tool ? toolPath(server, tool) : undefined;
  });
}

interface DefinitionsState extends SceneObjectState {
  server: string;
  tool: string;
}

/** The definition diff of the tool, from the definition history query's frame (the scene's $data). */
export class DefinitionDiffView extends SceneObjectBase<DefinitionsState> {
  static Component = DefinitionDiffRenderer;
}

function DefinitionDiffRenderer({ model }: SceneComponentProps<DefinitionDiffView>) {
  const { server, tool } = model.useState();
  const { data } = sceneGraph.getData(model).useState();
  const defs = frameRows<Omit<ToolDefinition, 'diff' | 'facts'> & { diff: string }>(data?.series[0]).map(
    (d): ToolDefinition => ({ ...d, facts: null, diff: d.diff ? JSON.parse(d.diff) : null })
  );
  return (
    <Section title={`Definition history: ${server}/${tool}`} testId="tool-changes">
      {data?.state === 'Done' ? <DefinitionHistory defs={defs} /> : <p>Loading…</p>}
    </Section>
  );
}

export function toolScene(server: string, tool: string): EmbeddedScene {
  const scope = { server, tool };
  const history = PanelBuilders.table()
    .setTitle('Definitions (oldest first)')
    .setOverrides((b) =>
      b
        .matchFieldsWithName('definition_hash')
        .overrideLinks([
          appLink('Blast radius of this definition', 'blast', `server=${encodeURIComponent(server)}&tool=${encodeURIComponent(tool)}&definition_hash=\${__value.raw:percentencode}`),
        ])
        .matchFieldsWithNameByRegex('^(server_name|tool_name|description|input_schema|annotations|diff)$')
        .overrideCustomFieldConfig('hideFrom' as never, { viz: true, legend: true, tooltip: true } as never)
    )
    .build();
  return new EmbeddedScene({
    body: new SceneFlexLayout({
      direction: 'column',
      children: [
        new SceneFlexItem({ height: 32, body: new BlastLink({ params: scope, label: 'Blast radius of this tool', testId: 'tool-blast' }) }),
        new SceneFlexItem({
          height: 240,
          body: PanelBuilders.timeseries().setTitle(`Calls of ${server}/${tool}`).setData(mcpQuery([{ queryType: 'calls_over_time', ...scope }])).build(),
        }),
        // The history table and the diff share one query ($data of their layout).
        new SceneFlexLayout({
          direction: 'column',
          $data: mcpQuery([{ queryType: 'tool_definitions', ...scope }]),
          children: [new SceneFlexItem({ height: 220, body: history }), new SceneFlexItem({ body: new DefinitionDiffView(scope) })],
        }),
      ],
    }),
  });
}

/** tools/:server/:tool under the Tools tab. */
export const toolDrilldown: SceneAppDrilldownView = {
  routePath: 'tools/:server/:tool',
  getPage: (match, parent) => {
    // react-router hands the parameters decoded.
    const { server, tool } = match.params as { server: string; tool: string };
    return detailPage(parent, `Tool ${server}/${tool}`, toolPath(server, tool), 'tools/:server/:tool', () => toolScene(server, tool));
  },
};
