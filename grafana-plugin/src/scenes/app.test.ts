import { setDataSourceSrv } from '@grafana/runtime';
import { SceneQueryRunner, VizPanel, sceneGraph } from '@grafana/scenes';
import { parseValuesQuery } from '../datasource/datasource';
import { overviewScene } from './overview';
import { variables } from './common';

test('variable queries: values(field[, tenant]) and the older "agents"', () => {
  expect(parseValuesQuery('values(tenant)')).toEqual({ field: 'tenant' });
  expect(parseValuesQuery('values(agent, acme)')).toEqual({ field: 'agent', tenant: 'acme' });
  expect(parseValuesQuery('values( tool ,* )')).toEqual({ field: 'tool', tenant: '*' });
  expect(parseValuesQuery('agents')).toEqual({ field: 'agent' });
  expect(parseValuesQuery('values(outcome)')).toBeUndefined();
  expect(parseValuesQuery('select 1')).toBeUndefined();
});

describe('scenes on the mcpwatch data source', () => {
  beforeAll(() => {
    const ds = { uid: 'ds-1', type: 'mcpwatch-mcpwatch-datasource', name: 'mcpwatch' };
    setDataSourceSrv({ getList: () => [ds] } as never);
  });

  test('every overview panel queries the configured data source with the shared variables', () => {
    const scene = overviewScene();
    const panels = sceneGraph.findAllObjects(scene, (o) => o instanceof VizPanel) as VizPanel[];
    expect(panels.map((p) => p.state.pluginId).sort()).toEqual(['nodeGraph', 'stat', 'stat', 'stat', 'stat', 'table', 'table', 'table', 'timeseries']);
    for (const p of panels) {
      const runner = p.state.$data as SceneQueryRunner;
      expect(runner.state.datasource).toEqual({ type: 'mcpwatch-mcpwatch-datasource', uid: 'ds-1' });
      for (const q of runner.state.queries) {
        expect(q).toMatchObject({ tenant: '$tenant', agent: '$agent', server: '$server', tool: '$tool' });
      }
    }
    const graph = panels.find((p) => p.state.pluginId === 'nodeGraph')!;
    expect((graph.state.$data as SceneQueryRunner).state.queries[0].queryType).toBe('agent_graph');
  });

  test('variables: tenant, agent, server, tool with All, following $tenant', () => {
    const set = variables();
    const names = set.state.variables.map((v) => v.state.name);
    expect(names).toEqual(['tenant', 'agent', 'server', 'tool']);
    const q = (n: string) => (set.getByName(n)!.state as unknown as { query: string }).query;
    expect(q('tenant')).toBe('values(tenant)');
    expect(q('agent')).toBe('values(agent, $tenant)');
    for (const v of set.state.variables) {
      expect(v.state).toMatchObject({ includeAll: true, allValue: '*' });
    }
  });
});
