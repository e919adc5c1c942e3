// Against the real @modelcontextprotocol/sdk: an instrumented Client and
// McpServer linked with the SDK's InMemoryTransport.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { instrumentClient, instrumentServer } from '../index';
import { attrs, contextManager, link, newClient, newProvider, newServer, one, parentSpanId, POISONED } from '../testutil/helpers';

contextManager();

async function run(opts: Parameters<typeof instrumentClient>[1] = {}) {
  const { provider, exporter } = newProvider();
  const server = instrumentServer(newServer(), { tracerProvider: provider, ...opts });
  const client = instrumentClient(newClient(), { tracerProvider: provider, ...opts });
  await link(client, server);
  return { provider, exporter, server, client };
}

test('every request: a CLIENT span, and a SERVER span that is its child in the same trace', async () => {
  const { exporter, client, server } = await run();
  await client.listTools();
  await client.callTool({ name: 'read_file', arguments: { path: '/etc/hosts' } });
  await client.getPrompt({ name: 'greet', arguments: { who: 'ada' } });
  await client.readResource({ uri: 'file:///srv/README.md' });
  await client.ping();
  await client.close();
  await server.close();

  const spans = exporter.getFinishedSpans();
  const pairs: [string, string][] = [
    ['initialize', 'initialize'],
    ['tools/list', 'tools/list'],
    ['tools/call read_file', 'tools/call'],
    ['prompts/get greet', 'prompts/get'],
    ['resources/read', 'resources/read'],
    ['ping', 'ping'],
  ];
  assert.equal(spans.length, pairs.length * 2, spans.map((s) => s.name).join(', '));
  const traces = new Set<string>();
  for (const [name, method] of pairs) {
    const c = one(spans, name, SpanKind.CLIENT);
    const s = one(spans, name, SpanKind.SERVER);
    assert.equal(attrs(c)['mcp.method.name'], method);
    assert.equal(attrs(s)['mcp.method.name'], method);
    assert.equal(s.spanContext().traceId, c.spanContext().traceId, `${name}: one trace`);
    assert.equal(parentSpanId(s), c.spanContext().spanId, `${name}: server span is the client span's child`);
    assert.equal(parentSpanId(c), undefined, `${name}: client span is a root (no active span)`);
    assert.equal(typeof attrs(c)['jsonrpc.request.id'], 'string');
    assert.equal(attrs(c)['jsonrpc.request.id'], attrs(s)['jsonrpc.request.id'], `${name}: same JSON-RPC id both sides`);
    assert.equal(c.status.code, SpanStatusCode.UNSET);
    assert.equal(attrs(c)['error.type'], undefined);
    // identity: the server's name from initialize (client) / its own (server)
    assert.equal(attrs(c)['mcpwatch.server_name'], 'test-server');
    assert.equal(attrs(c)['mcpwatch.server_version'], '2.1.0');
    assert.equal(attrs(s)['mcpwatch.server_name'], 'test-server');
    assert.equal(attrs(c)['mcpwatch.client_name'], 'test-client');
    assert.equal(attrs(s)['mcpwatch.client_name'], 'test-client');
    assert.equal(attrs(s)['mcpwatch.client_version'], '0.9.0');
    assert.match(String(attrs(c)['mcp.protocol.version']), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(attrs(s)['mcp.protocol.version'], attrs(c)['mcp.protocol.version']);
    // InMemoryTransport: no session, no network transport
    assert.equal(attrs(c)['mcp.session.id'], undefined);
    assert.equal(attrs(c)['network.transport'], undefined);
    traces.add(c.spanContext().traceId);
  }
  assert.equal(traces.size, pairs.length, 'without an active span each request is its own trace');
  const ids = pairs.map(([n]) => Number(attrs(one(spans, n, SpanKind.CLIENT))['jsonrpc.request.id']));
  assert.deepEqual(ids, [0, 1, 2, 3, 4, 5]);

  for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
    const call = one(spans, 'tools/call read_file', kind);
    assert.equal(attrs(call)['gen_ai.operation.name'], 'execute_tool');
    assert.equal(attrs(call)['gen_ai.tool.name'], 'read_file');
    assert.equal(attrs(call)['gen_ai.tool.call.arguments'], '{"path":"/etc/hosts"}');
    assert.deepEqual(JSON.parse(String(attrs(call)['gen_ai.tool.call.result'])), {
      content: [{ type: 'text', text: 'contents of /etc/hosts' }],
    });
    const prompt = one(spans, 'prompts/get greet', kind);
    assert.equal(attrs(prompt)['gen_ai.prompt.name'], 'greet');
    assert.equal(attrs(prompt)['gen_ai.operation.name'], undefined);
    assert.equal(attrs(prompt)['gen_ai.tool.call.arguments'], undefined);
    assert.equal(attrs(one(spans, 'resources/read', kind))['mcp.resource.uri'], 'file:///srv/README.md');
    const list = one(spans, 'tools/list', kind);
    const defs = JSON.parse(String(attrs(list)['gen_ai.tool.definitions']));
    assert.deepEqual(
      defs.map((d: { name: string }) => d.name),
      ['read_file', 'fetch_url', 'add', 'list_roots'],
    );
    const add = defs.find((d: { name: string }) => d.name === 'add');
    assert.equal(add.description, POISONED);
    assert.deepEqual(Object.keys(add.inputSchema.properties), ['a', 'b']);
    assert.equal(attrs(list)['gen_ai.tool.call.arguments'], undefined);
  }
});

test('isError results are tool_error; JSON-RPC errors carry their code', async () => {
  const { exporter, client } = await run();
  const r = await client.callTool({ name: 'fetch_url', arguments: { url: 'http://169.254.169.254/' } });
  assert.equal(r.isError, true);
  const unknown = await client.callTool({ name: 'no_such_tool', arguments: {} });
  assert.equal(unknown.isError, true); // McpServer answers unknown tools with an isError result
  await assert.rejects(client.request({ method: 'resources/read', params: { uri: 'file:///nope' } } as never, {} as never));
  await assert.rejects(client.request({ method: 'no/such/method' } as never, {} as never));
  await client.close();
  const spans = exporter.getFinishedSpans();
  for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
    const f = one(spans, 'tools/call fetch_url', kind);
    assert.equal(attrs(f)['error.type'], 'tool_error');
    assert.equal(f.status.code, SpanStatusCode.ERROR);
    assert.equal(f.status.message, 'connection refused: http://169.254.169.254/');
    assert.match(String(attrs(f)['gen_ai.tool.call.result']), /"isError":true/);
    assert.equal(attrs(one(spans, 'tools/call no_such_tool', kind))['error.type'], 'tool_error');
  }
  // resources/read of an unknown resource: the handler throws -32602.
  for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
    const rr = one(spans, 'resources/read', kind);
    assert.equal(attrs(rr)['error.type'], '-32602');
    assert.equal(attrs(rr)['rpc.response.status_code'], '-32602');
    assert.equal(rr.status.code, SpanStatusCode.ERROR);
    assert.match(String(rr.status.message), /not found/i);
  }
  // An unknown method has no handler: only the client sees it (-32601).
  const nm = one(spans, 'no/such/method', SpanKind.CLIENT);
  assert.equal(attrs(nm)['error.type'], '-32601');
  assert.equal(spans.filter((s) => s.name === 'no/such/method').length, 1);
});

test('server-to-client requests: CLIENT span on the server, SERVER span on the client, nested in the tool call', async () => {
  const { exporter, client } = await run();
  await client.callTool({ name: 'list_roots', arguments: {} });
  await client.close();
  const spans = exporter.getFinishedSpans();
  const cc = one(spans, 'tools/call list_roots', SpanKind.CLIENT);
  const sc = one(spans, 'tools/call list_roots', SpanKind.SERVER);
  const sr = one(spans, 'roots/list', SpanKind.CLIENT); // sent by the server
  const cr = one(spans, 'roots/list', SpanKind.SERVER); // handled by the client
  assert.equal(parentSpanId(sc), cc.spanContext().spanId);
  assert.equal(parentSpanId(sr), sc.spanContext().spanId, 'the server request runs inside the tool handler span');
  assert.equal(parentSpanId(cr), sr.spanContext().spanId);
  for (const s of [cc, sc, sr, cr]) assert.equal(s.spanContext().traceId, cc.spanContext().traceId);
  assert.equal(attrs(sr)['mcpwatch.server_name'], 'test-server');
  assert.equal(attrs(cr)['mcpwatch.server_name'], 'test-server');
  assert.equal(attrs(sr)['jsonrpc.request.id'], attrs(cr)['jsonrpc.request.id']);
});

test("the caller's agent id reaches the server's spans (one call, one agent), also its requests to the client", async () => {
  const { exporter, client } = await run({ agentId: 'agent ts/ä' });
  await client.callTool({ name: 'read_file', arguments: { path: '/etc/hosts' } });
  await client.callTool({ name: 'list_roots', arguments: {} });
  await client.close();
  const spans = exporter.getFinishedSpans();
  for (const name of ['initialize', 'tools/call read_file', 'tools/call list_roots']) {
    assert.equal(attrs(one(spans, name, SpanKind.CLIENT))['gen_ai.agent.id'], 'agent ts/ä', name);
    assert.equal(attrs(one(spans, name, SpanKind.SERVER))['gen_ai.agent.id'], 'agent ts/ä', name);
  }
  // roots/list goes from the server to the agent: the server's CLIENT span
  // names the agent of the tools/call it runs in; the agent's own SERVER
  // span takes no id from the request (the collector uses its resource).
  assert.equal(attrs(one(spans, 'roots/list', SpanKind.CLIENT))['gen_ai.agent.id'], 'agent ts/ä');
  assert.equal(attrs(one(spans, 'roots/list', SpanKind.SERVER))['gen_ai.agent.id'], undefined);

  // Without a configured id, the resource's service.name/service.instance.id (the collector's default).
  const exporter2 = new InMemorySpanExporter();
  const provider2 = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'agent-svc', 'service.instance.id': 'i-7' }),
    spanProcessors: [new SimpleSpanProcessor(exporter2)],
  });
  const server2 = instrumentServer(newServer(), { tracerProvider: provider2 });
  const client2 = instrumentClient(newClient(), { tracerProvider: provider2 });
  await link(client2, server2);
  await client2.callTool({ name: 'read_file', arguments: { path: '/etc/hosts' } });
  await client2.close();
  const got = exporter2.getFinishedSpans();
  assert.equal(attrs(one(got, 'tools/call read_file', SpanKind.SERVER))['gen_ai.agent.id'], 'agent-svc/i-7');
  assert.equal(attrs(one(got, 'tools/call read_file', SpanKind.CLIENT))['gen_ai.agent.id'], undefined, 'the collector derives the client side itself');

  // Switched off: no id travels.
  const off = await run({ agentId: 'agent-x', propagateAgentId: false });
  await off.client.callTool({ name: 'read_file', arguments: { path: '/etc/hosts' } });
  await off.client.close();
  assert.equal(attrs(one(off.exporter.getFinishedSpans(), 'tools/call read_file', SpanKind.SERVER))['gen_ai.agent.id'], undefined);
});

test('client spans are children of the caller active span', async () => {
  const { provider, exporter, client } = await run();
  const tracer = provider.getTracer('app');
  await tracer.startActiveSpan('agent turn', async (turn) => {
    await client.callTool({ name: 'read_file', arguments: { path: 'a' } });
    await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
    turn.end();
  });
  await client.close();
  const spans = exporter.getFinishedSpans();
  const turn = spans.find((s) => s.name === 'agent turn')!;
  for (const n of ['tools/call read_file', 'tools/call add']) {
    const c = one(spans, n, SpanKind.CLIENT);
    assert.equal(parentSpanId(c), turn.spanContext().spanId);
    assert.equal(parentSpanId(one(spans, n, SpanKind.SERVER)), c.spanContext().spanId);
  }
});

test('trace context travels in params._meta (traceparent, tracestate) and the caller object is not changed', async () => {
  const { provider, exporter } = newProvider();
  const server = instrumentServer(newServer(), { tracerProvider: provider });
  const client = instrumentClient(newClient(), { tracerProvider: provider });
  let seen: Record<string, unknown> | undefined;
  server.registerTool('meta', { description: 'Echo _meta.' }, async (extra) => {
    seen = extra._meta as Record<string, unknown>;
    return { content: [{ type: 'text', text: 'ok' }] };
  });
  await link(client, server);
  const params = { name: 'meta', arguments: {}, _meta: { progressToken: undefined, custom: 'kept' } };
  const tracer = provider.getTracer('app');
  const { createTraceState } = await import('@opentelemetry/api');
  const parent = trace.wrapSpanContext({
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    traceState: createTraceState('vendor=abc'),
  });
  const { context } = await import('@opentelemetry/api');
  await context.with(trace.setSpan(context.active(), parent), () => client.callTool(params));
  assert.deepEqual(Object.keys(params._meta), ['progressToken', 'custom']);
  const c = one(exporter.getFinishedSpans(), 'tools/call meta', SpanKind.CLIENT);
  assert.equal(seen?.traceparent, `00-0af7651916cd43dd8448eb211c80319c-${c.spanContext().spanId}-01`);
  assert.equal(seen?.tracestate, 'vendor=abc');
  assert.equal(seen?.custom, 'kept');
  const s = one(exporter.getFinishedSpans(), 'tools/call meta', SpanKind.SERVER);
  assert.equal(s.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(s.spanContext().traceState?.get('vendor'), 'abc');
  void tracer;
  await client.close();
});

test('content attributes are capped, and can be turned off', async () => {
  const big = 'é'.repeat(5000); // 10000 bytes of UTF-8
  {
    const { exporter, client } = await run({ maxContentBytes: 256, maxToolDefinitionsBytes: 400 });
    await client.callTool({ name: 'read_file', arguments: { path: big } });
    await client.listTools();
    await client.close();
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const spans = exporter.getFinishedSpans();
      const a = attrs(one(spans, 'tools/call read_file', kind));
      for (const k of ['gen_ai.tool.call.arguments', 'gen_ai.tool.call.result']) {
        const v = String(a[k]);
        assert.ok(Buffer.byteLength(v) <= 256, `${k}: ${Buffer.byteLength(v)} bytes`);
        assert.ok(v.endsWith('…[TRUNCATED]'), k);
        assert.ok(!v.includes('\uFFFD'), `${k}: cut inside a UTF-8 sequence`);
      }
      assert.ok(String(a['gen_ai.tool.call.arguments']).startsWith('{"path":"éé'));
      const l = attrs(one(spans, 'tools/list', kind));
      const defs = JSON.parse(String(l['gen_ai.tool.definitions'])); // still valid JSON
      assert.ok(Buffer.byteLength(String(l['gen_ai.tool.definitions'])) <= 400);
      assert.equal(defs.length + Number(l['mcpwatch.tool_definitions_dropped']), 4);
      assert.ok(defs.length >= 1);
    }
  }
  {
    const { exporter, client } = await run({ captureContent: false, captureToolDefinitions: false });
    await client.callTool({ name: 'read_file', arguments: { path: '/home/user/.ssh/id_rsa' } });
    await client.listTools();
    await client.close();
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 6);
    for (const s of spans) {
      for (const k of ['gen_ai.tool.call.arguments', 'gen_ai.tool.call.result', 'gen_ai.tool.definitions']) {
        assert.equal(attrs(s)[k], undefined, `${s.name}: ${k}`);
      }
      assert.ok(!JSON.stringify(s.attributes).includes('id_rsa'));
    }
    assert.equal(attrs(one(spans, 'tools/call read_file', SpanKind.CLIENT))['gen_ai.tool.name'], 'read_file');
  }
});

test('instrumenting twice does not double the spans', async () => {
  const { provider, exporter } = newProvider();
  const server = instrumentServer(instrumentServer(newServer(), { tracerProvider: provider }), { tracerProvider: provider });
  const client = instrumentClient(instrumentClient(newClient(), { tracerProvider: provider }), { tracerProvider: provider });
  await link(client, server);
  await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
  await client.close();
  assert.equal(exporter.getFinishedSpans().length, 4);
});

test('a low-level Server whose handlers were set before instrumenting is covered', async () => {
  const { Server } = await import('@modelcontextprotocol/sdk/server/index.js');
  const { CallToolRequestSchema, ListToolsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const server = new Server({ name: 'low-level', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [{ name: 'echo', description: 'Echo.', inputSchema: { type: 'object' as const } }],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => ({
    content: [{ type: 'text' as const, text: JSON.stringify(req.params.arguments) }],
  }));
  const { provider, exporter } = newProvider();
  instrumentServer(server, { tracerProvider: provider });
  const client = instrumentClient(newClient(), { tracerProvider: provider });
  const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await server.connect(st);
  await client.connect(ct);
  await client.listTools();
  await client.callTool({ name: 'echo', arguments: { x: 1 } });
  await client.close();
  const spans = exporter.getFinishedSpans();
  const s = one(spans, 'tools/call echo', SpanKind.SERVER);
  assert.equal(attrs(s)['mcpwatch.server_name'], 'low-level');
  assert.equal(attrs(s)['gen_ai.tool.call.arguments'], '{"x":1}');
  assert.equal(parentSpanId(s), one(spans, 'tools/call echo', SpanKind.CLIENT).spanContext().spanId);
  assert.equal(JSON.parse(String(attrs(one(spans, 'tools/list', SpanKind.SERVER))['gen_ai.tool.definitions']))[0].name, 'echo');
  assert.equal(spans.filter((x) => x.name === 'initialize').length, 2);
});

test('uninstrumented clients and servers emit nothing and send no trace context', async () => {
  const { provider, exporter } = newProvider();
  // Even with a global provider registered and an active span, the SDK
  // itself creates no spans and adds nothing to _meta.
  trace.setGlobalTracerProvider(provider);
  try {
    const server = newServer();
    let seen: Record<string, unknown> | undefined = {};
    server.registerTool('meta', { description: 'Echo _meta.' }, async (extra) => {
      seen = extra._meta as Record<string, unknown> | undefined;
      return { content: [{ type: 'text', text: 'ok' }] };
    });
    const client = newClient();
    await link(client, server);
    await provider.getTracer('app').startActiveSpan('turn', async (span) => {
      await client.listTools();
      await client.callTool({ name: 'read_file', arguments: { path: '/etc/passwd' } });
      await client.callTool({ name: 'list_roots', arguments: {} });
      await client.callTool({ name: 'meta', arguments: {} });
      span.end();
    });
    await client.close();
    assert.deepEqual(
      exporter.getFinishedSpans().map((s) => s.name),
      ['turn'],
    );
    assert.equal(seen?.traceparent, undefined);
  } finally {
    trace.disable();
  }
});

test('an instrumented client against an uninstrumented server still works and traces its side only', async () => {
  const { provider, exporter } = newProvider();
  const server = newServer();
  const client = instrumentClient(newClient(), { tracerProvider: provider });
  await link(client, server);
  const r = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
  assert.deepEqual(r.content, [{ type: 'text', text: '5' }]);
  await client.close();
  assert.deepEqual(
    exporter
      .getFinishedSpans()
      .map((s: ReadableSpan) => `${s.name}/${s.kind}`)
      .sort(),
    ['initialize/2', 'tools/call add/2'],
  );
});
