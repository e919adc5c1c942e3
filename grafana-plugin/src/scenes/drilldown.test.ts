import { FieldType, toDataFrame } from '@grafana/data';
import { setDataSourceSrv } from '@grafana/runtime';
import { SceneObject, SceneQueryRunner, VizPanel } from '@grafana/scenes';
import { KEPT_PARAMS, appLink, appUrl, frameRows } from './drilldown';

// The drill-down helpers and the detail scenes' queries: every query of an
// agent's, a session's or a tool's page is pinned to it.
beforeAll(() => {
  setDataSourceSrv({ getList: () => [{ uid: 'ds-1', type: 'mcpwatch-mcpwatch-datasource', name: 'mcpwatch' }] } as never);
});

test('links keep the time range and variables, then add their own parameters', () => {
  expect(KEPT_PARAMS).toBe('${__url.params:include:from,to,refresh,var-tenant,var-agent,var-server,var-tool}');
  expect(appLink('x', 'blast', 'session=${__value.raw:percentencode}').url).toBe(`/a/mcpwatch-mcpwatch-app/blast${KEPT_PARAMS}&session=\${__value.raw:percentencode}`);
  const search = { from: 'now-7d', to: 'now', 'var-agent': 'agent-alpha', agent: 'stale', refresh: '' };
  expect(appUrl('blast', search, { server: 'fs', tool: 'read file', definition_hash: undefined })).toBe(
    '/a/mcpwatch-mcpwatch-app/blast?from=now-7d&to=now&var-agent=agent-alpha&server=fs&tool=read+file'
  );
});

test('frame rows as objects, times as ISO strings', () => {
  const frame = toDataFrame({
    fields: [
      { name: 'ts', type: FieldType.time, values: [Date.UTC(2026, 0, 2, 3, 4, 5)] },
      { name: 'tool_name', type: FieldType.string, values: ['read_file'] },
      { name: 'calls', type: FieldType.number, values: [7] },
    ],
  });
  expect(frameRows(frame)).toEqual([{ ts: '2026-01-02T03:04:05.000Z', tool_name: 'read_file', calls: 7 }]);
  expect(frameRows(undefined)).toEqual([]);
});

/** Every query of a scene (the runners anywhere in its tree). */
function queries(root: SceneObject): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const walk = (o: SceneObject) => {
    if (o instanceof SceneQueryRunner) {
      out.push(...(o.state.queries as Array<Record<string, unknown>>));
    }
    o.forEachChild(walk);
  };
  walk(root);
  return out;
}

describe('detail scenes', () => {
  // Imported here so that the data source service is there when they build runners.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = () => ({ ...require('./agents'), ...require('./sessions'), ...require('./tools') });

  test("an agent's page queries that agent only", () => {
    const qs = queries(load().agentScene('agent-x'));
    expect(qs.map((q) => q.queryType).sort()).toEqual(['agent_graph', 'calls', 'calls_over_time', 'incidents', 'sessions', 'top_tools']);
    expect(qs.every((q) => q.agent === 'agent-x' && q.tenant === '$tenant')).toBe(true);
  });

  test("a session's page reads the whole session whatever the agent, server and tool variables", () => {
    const qs = queries(load().sessionScene('s-1'));
    expect(qs).toHaveLength(1);
    expect(qs[0]).toMatchObject({ queryType: 'calls', session: 's-1', agent: '', server: '', tool: '', tenant: '$tenant' });
  });

  test("a tool's page queries that tool, and its definition hashes link to their blast radius", () => {
    const scene = load().toolScene('fs', 'read file');
    const qs = queries(scene);
    expect(qs.map((q) => q.queryType).sort()).toEqual(['calls_over_time', 'tool_definitions']);
    expect(qs.every((q) => q.server === 'fs' && q.tool === 'read file')).toBe(true);
    const panels: VizPanel[] = [];
    const walk = (o: SceneObject) => {
      if (o instanceof VizPanel) {
        panels.push(o);
      }
      o.forEachChild(walk);
    };
    walk(scene);
    const history = panels.find((p) => p.state.title === 'Definitions (oldest first)');
    const links = history?.state.fieldConfig.overrides.flatMap((o) => o.properties.filter((p) => p.id === 'links').flatMap((p) => p.value));
    expect(links?.[0]?.url).toBe(`/a/mcpwatch-mcpwatch-app/blast${KEPT_PARAMS}&server=fs&tool=read%20file&definition_hash=\${__value.raw:percentencode}`);
  });
});
