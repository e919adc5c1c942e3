// stdio (a real child process) and the ambient-context link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { instrumentClient, instrumentServer } from '../index';
import { attrs, contextManager, link, newClient, newProvider, newServer, one, parentSpanId } from '../testutil/helpers';

contextManager();

test('stdio: network.transport pipe; the server identity comes from the initialize answer', async () => {
  const { provider, exporter } = newProvider();
  const client = instrumentClient(newClient(), { tracerProvider: provider });
  const transport = new StdioClientTransport({ command: process.execPath, args: [join(__dirname, '..', 'testutil', 'stdio-server.js')], stderr: 'inherit' });
  try {
    await client.connect(transport);
    await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
  } finally {
    await client.close();
  }
  const spans = exporter.getFinishedSpans();
  for (const n of ['initialize', 'tools/call add']) {
    const c = one(spans, n, SpanKind.CLIENT);
    assert.equal(attrs(c)['network.transport'], 'pipe');
    assert.equal(attrs(c)['network.protocol.name'], undefined);
    assert.equal(attrs(c)['server.address'], undefined);
    assert.equal(attrs(c)['mcp.session.id'], undefined);
    assert.equal(attrs(c)['mcpwatch.server_name'], 'test-server');
  }
  assert.equal(spans.length, 2);
});

test('server span: parent from params._meta, the ambient span as a link', async () => {
  const { provider, exporter } = newProvider();
  const server = instrumentServer(newServer(), { tracerProvider: provider });
  const client = newClient(); // not instrumented: the traceparent below is sent by hand
  await link(client, server);
  const remote = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
  // InMemoryTransport hands the message over in the caller's async context,
  // so this app span is the ambient context of the server handler.
  await provider.getTracer('app').startActiveSpan('ambient', async (amb) => {
    await client.callTool({ name: 'add', arguments: { a: 1, b: 2 }, _meta: { traceparent: `00-${remote.traceId}-${remote.spanId}-01` } });
    amb.end();
  });
  await client.close();
  const spans = exporter.getFinishedSpans();
  const s = one(spans, 'tools/call add', SpanKind.SERVER);
  const amb = spans.find((x) => x.name === 'ambient')!;
  assert.equal(s.spanContext().traceId, remote.traceId);
  assert.equal(parentSpanId(s), remote.spanId);
  assert.equal(s.parentSpanContext?.isRemote, true);
  assert.deepEqual(
    s.links.map((l) => l.context.spanId),
    [amb.spanContext().spanId],
  );
  // Malformed traceparents are ignored: the ambient span is the parent then.
  exporter.reset();
  await client.connect(await (async () => {
    const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
    const [ct, st] = InMemoryTransport.createLinkedPair();
    const server2 = instrumentServer(newServer(), { tracerProvider: provider });
    await server2.connect(st);
    return ct;
  })());
  await context.with(trace.setSpanContext(context.active(), amb.spanContext()), () =>
    client.callTool({ name: 'add', arguments: { a: 1, b: 2 }, _meta: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' } }),
  );
  await client.close();
  const s2 = one(exporter.getFinishedSpans(), 'tools/call add', SpanKind.SERVER);
  assert.equal(parentSpanId(s2), amb.spanContext().spanId);
  assert.equal(s2.links.length, 0);
});
