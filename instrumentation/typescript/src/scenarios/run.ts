// Scenario runner: a real MCP server and client in this process, traced by
// one instrumentation stack, exported as OTLP/HTTP protobuf.
//
//   node dist/scenarios/run.js --stack capture|openllmetry \
//     --endpoint http://127.0.0.1:PORT --token TOKEN [--transport http|inmemory]
//
// capture:     @mcpwatch/mcp-capture on both client and server; the agent
//              (client) and the MCP server export with their own resource
//              (service.name scenario-agent / dev-workstation-mcp).
// openllmetry: the real @traceloop/instrumentation-mcp, nothing of ours;
//              one resource (service.name scenario-agent).
//
// Spans go to ENDPOINT/v1/traces with `Authorization: Bearer TOKEN`. The
// runner flushes, prints a JSON summary of what it sent on stdout and exits
// 0; 1 when an export failed, 2 on bad arguments.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { StepResult } from './world';
import { instrumentClient, instrumentServer, INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from '../index';

type Stack = 'capture' | 'openllmetry';
type World = typeof import('./world');

interface Args {
  stack: Stack;
  endpoint: string;
  token: string;
  transport: 'http' | 'inmemory';
}

function usage(msg: string): never {
  process.stderr.write(
    `${msg}\nusage: node dist/scenarios/run.js --stack capture|openllmetry --endpoint http://127.0.0.1:PORT --token TOKEN [--transport http|inmemory]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) m.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      m.set(a.slice(2), argv[++i]);
    }
  }
  const stack = m.get('stack');
  if (stack !== 'capture' && stack !== 'openllmetry') usage('--stack must be capture or openllmetry');
  const endpoint = m.get('endpoint');
  if (!endpoint || !/^https?:\/\//.test(endpoint)) usage('--endpoint must be an http(s) URL');
  const transport = (m.get('transport') ?? 'http') as Args['transport'];
  if (transport !== 'http' && transport !== 'inmemory') usage('--transport must be http or inmemory');
  return { stack, endpoint, token: m.get('token') ?? '', transport };
}

function tracesURL(endpoint: string): string {
  const u = endpoint.replace(/\/+$/, '');
  return u.endsWith('/v1/traces') ? u : `${u}/v1/traces`;
}

/** The version in the package.json of an installed package. */
function versionOf(pkg: string): string {
  let dir = dirname(require.resolve(pkg === '@modelcontextprotocol/sdk' ? '@modelcontextprotocol/sdk/client/index.js' : pkg));
  for (;;) {
    try {
      const j = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (j.name === pkg) return j.version;
    } catch {
      /* keep climbing */
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

/** Counts what the OTLP exporter sent and what failed. */
class Counting implements SpanExporter {
  spans = 0;
  failed = 0;
  errors: string[] = [];
  constructor(private inner: SpanExporter) {}
  export(spans: ReadableSpan[], done: (r: { code: number; error?: Error }) => void): void {
    this.inner.export(spans, (r) => {
      if (r.code === 0) this.spans += spans.length;
      else {
        this.failed += spans.length;
        this.errors.push(String(r.error?.message ?? r.error ?? 'export failed'));
      }
      done(r);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function provider(args: Args, service: string, instance: string): { tp: BasicTracerProvider; counter: Counting } {
  const counter = new Counting(
    new OTLPTraceExporter({ url: tracesURL(args.endpoint), headers: args.token ? { Authorization: `Bearer ${args.token}` } : {} }),
  );
  const tp = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': service,
      'service.instance.id': instance,
      'service.version': '1.0.0',
      'host.name': 'scenario-host',
    }),
    // One export request per flush (the default batch is 512 spans).
    spanProcessors: [new BatchSpanProcessor(counter, { scheduledDelayMillis: 60_000 })],
  });
  return { tp, counter };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

  const providers: { tp: BasicTracerProvider; counter: Counting; service: string }[] = [];
  let instrumentation: string;
  let setup: (w: World, client: World['Client']['prototype'], server: ReturnType<World['newScenarioServer']>) => void;

  if (args.stack === 'capture') {
    const agent = provider(args, 'scenario-agent', 'scenario-agent-1');
    const srv = provider(args, 'dev-workstation-mcp', 'dev-workstation-mcp-1');
    providers.push({ ...agent, service: 'scenario-agent' }, { ...srv, service: 'dev-workstation-mcp' });
    instrumentation = `${INSTRUMENTATION_NAME}@${INSTRUMENTATION_VERSION}`;
    setup = (_w, client, server) => {
      instrumentClient(client, { tracerProvider: agent.tp });
      instrumentServer(server, { tracerProvider: srv.tp });
    };
  } else {
    const agent = provider(args, 'scenario-agent', 'scenario-agent-1');
    providers.push({ ...agent, service: 'scenario-agent' });
    trace.setGlobalTracerProvider(agent.tp);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { McpInstrumentation } = require('@traceloop/instrumentation-mcp');
    const inst = new McpInstrumentation({ traceContent: true });
    inst.setTracerProvider(agent.tp);
    inst.enable();
    instrumentation = `@traceloop/instrumentation-mcp@${versionOf('@traceloop/instrumentation-mcp')}`;
    setup = (w) => {
      // 0.27.0 registers require/import hooks for the module names
      // "@modelcontextprotocol/sdk/client(/index.js)" and ".../server(/index.js)",
      // but SDK 1.32.2 resolves them to dist/cjs|esm/... files, so the hooks
      // never fire (checked for require and for import with
      // import-in-the-middle). Its documented fallback is manuallyInstrument.
      if (!(w.Client.prototype.request as { __wrapped?: boolean }).__wrapped) {
        inst.manuallyInstrument({ Client: w.Client, Server: w.Server });
        instrumentation += ' (manuallyInstrument: its require hook did not fire)';
      }
    };
  }

  // Only now load the SDK (after the instrumentation's hooks are in place).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const w: typeof import('./world') = require('./world');
  const server = w.newScenarioServer();
  const client = w.newScenarioClient();
  setup(w, client, server);

  const conn = await w.connect(client, server, args.transport);
  const sessionId = (client.transport as { sessionId?: string } | undefined)?.sessionId;
  const { results, toolsListed } = await w.play(client, w.steps());
  await conn.close();

  for (const p of providers) {
    // A failed export rejects the flush; the counter has recorded it.
    await p.tp.forceFlush().catch((err) => p.counter.errors.length || p.counter.errors.push(String(err?.message ?? err)));
    await p.tp.shutdown().catch(() => undefined);
  }
  const exported = providers.reduce((n, p) => n + p.counter.spans, 0);
  const failed = providers.reduce((n, p) => n + p.counter.failed, 0);
  const summary = {
    stack: args.stack,
    instrumentation,
    sdk: `@modelcontextprotocol/sdk@${versionOf('@modelcontextprotocol/sdk')}`,
    otlp: {
      url: tracesURL(args.endpoint),
      encoding: 'protobuf',
      exporter: `@opentelemetry/exporter-trace-otlp-proto@${versionOf('@opentelemetry/exporter-trace-otlp-proto')}`,
      bearer_token: args.token !== '',
      services: providers.map((p) => ({ service_name: p.service, spans_exported: p.counter.spans, spans_failed: p.counter.failed })),
      spans_exported: exported,
      spans_failed: failed,
      errors: providers.flatMap((p) => p.counter.errors),
    },
    transport: conn.transport,
    server_url: conn.url,
    session_id: sessionId ?? null,
    server: w.SERVER_INFO,
    client: w.CLIENT_INFO,
    tools_listed: toolsListed,
    poisoned_tool: { name: 'add', description: w.POISONED_DESCRIPTION },
    requests: [{ method: 'initialize' }, ...results],
    attacks: results.filter((r: StepResult) => r.attack).map((r: StepResult) => ({ rule: r.attack, method: r.method, tool: r.tool, arguments: r.arguments })),
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  return failed > 0 || exported === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`scenario failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
