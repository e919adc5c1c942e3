// Streamable HTTP on loopback: the session id and the network attributes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { instrumentClient, instrumentServer } from '../index';
import { attrs, contextManager, newClient, newProvider, newServer, one, parentSpanId } from '../testutil/helpers';
import { serveHttp } from '../testutil/http';

contextManager();

test('streamable HTTP: mcp.session.id on both sides, network.transport tcp, server address', async () => {
  const { provider, exporter } = newProvider();
  const server = instrumentServer(newServer(), { tracerProvider: provider });
  const srv = await serveHttp(server);
  const client = instrumentClient(newClient(), { tracerProvider: provider });
  const transport = new StreamableHTTPClientTransport(srv.url);
  try {
    await client.connect(transport);
    await client.listTools();
    await client.callTool({ name: 'read_file', arguments: { path: '/home/user/.ssh/id_rsa' } });
    await client.callTool({ name: 'list_roots', arguments: {} });
  } finally {
    await client.close();
    await srv.close();
  }
  const sid = transport.sessionId;
  assert.match(String(sid), /^[0-9a-f-]{36}$/);
  const spans = exporter.getFinishedSpans();
  const names = ['initialize', 'tools/list', 'tools/call read_file', 'tools/call list_roots'];
  for (const n of names) {
    const c = one(spans, n, SpanKind.CLIENT);
    const s = one(spans, n, SpanKind.SERVER);
    assert.equal(attrs(c)['mcp.session.id'], sid, `${n} client`);
    assert.equal(attrs(s)['mcp.session.id'], sid, `${n} server`);
    for (const x of [c, s]) {
      assert.equal(attrs(x)['network.transport'], 'tcp');
      assert.equal(attrs(x)['network.protocol.name'], 'http');
    }
    assert.equal(attrs(c)['server.address'], '127.0.0.1');
    assert.equal(attrs(c)['server.port'], Number(srv.url.port));
    assert.equal(parentSpanId(s), c.spanContext().spanId, n);
  }
  // Server-to-client over HTTP: roots/list travels on the POST's SSE stream.
  const sr = one(spans, 'roots/list', SpanKind.CLIENT);
  const cr = one(spans, 'roots/list', SpanKind.SERVER);
  assert.equal(parentSpanId(cr), sr.spanContext().spanId);
  assert.equal(attrs(sr)['mcp.session.id'], sid);
  assert.equal(attrs(one(spans, 'tools/list', SpanKind.SERVER))['mcp.protocol.version'], attrs(one(spans, 'initialize', SpanKind.CLIENT))['mcp.protocol.version']);
});
