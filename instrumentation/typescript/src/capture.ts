// MCP semantic-convention spans for @modelcontextprotocol/sdk (1.x) clients
// and servers.
//
// The SDK has no OpenTelemetry of its own. Client and Server both extend
// the SDK's Protocol class, which owns the two places every JSON-RPC request
// goes through, whatever the method and whatever the transport:
//
//   1. Outgoing: Protocol.request(request, resultSchema, options). Every
//      helper (callTool, listTools, readResource, getPrompt, ping, the
//      server's createMessage/listRoots/elicitInput, connect's initialize)
//      ends in `this.request(...)`. We shadow it with an own property on the
//      instance: CLIENT span, W3C trace context injected into a copy of
//      `params._meta`, result/error recorded when the promise settles.
//   2. Incoming: Protocol._onrequest() looks the handler up with
//      `this._requestHandlers.get(method)` (a Map filled by
//      setRequestHandler). We override `get` on that one Map instance, so
//      handlers registered before instrumenting (Server's initialize/ping)
//      and after it (McpServer registers tools/list and tools/call lazily on
//      the first registerTool) are all wrapped: SERVER span whose parent is
//      the context extracted from `params._meta`, the handler runs inside it,
//      its result or thrown error is recorded. If a future SDK renames the
//      private Map we fall back to wrapping setRequestHandler (handlers set
//      later only).
//
// Both hooks are per instance: nothing global is patched, an uninstrumented
// Client or Server in the same process is untouched and emits nothing. The
// role (client or server) decides which identity goes where: a Client reports
// the server's name/version learnt from the initialize answer, a Server its
// own; requests the server sends to the client (sampling, roots, elicitation)
// are CLIENT spans on the server and SERVER spans on the client, as in the
// conventions.
import {
  context,
  createContextKey,
  createTraceState,
  propagation,
  trace,
  Attributes,
  Context,
  Link,
  Span,
  SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';

export const INSTRUMENTATION_NAME = '@mcpwatch/mcp-capture';
export const INSTRUMENTATION_VERSION = '0.1.0';

/** Options of instrumentClient / instrumentServer. */
export interface CaptureOptions {
  /** Where spans go; default: the global tracer provider. */
  tracerProvider?: TracerProvider;
  /**
   * Record `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result` on
   * tools/call spans (opt-in in the OTel conventions: they may hold
   * secrets). Default true, since auditing tool calls is the point; set
   * false to keep only names, ids and outcomes.
   */
  captureContent?: boolean;
  /** Cap in UTF-8 bytes of each content attribute. Default 16384. */
  maxContentBytes?: number;
  /** Record `gen_ai.tool.definitions` on tools/list spans. Default true. */
  captureToolDefinitions?: boolean;
  /**
   * Cap in bytes of `gen_ai.tool.definitions`; whole tools are left out past
   * it so the JSON stays valid (`mcpwatch.tool_definitions_dropped` counts
   * them). Default 65536.
   */
  maxToolDefinitionsBytes?: number;
  /** Inject (outgoing) and extract (incoming) trace context in `params._meta`. Default true. */
  propagateContext?: boolean;
  /**
   * This agent's id: `gen_ai.agent.id` on its client spans. Default: none
   * (the mcpwatch collector derives one from the resource).
   */
  agentId?: string;
  /**
   * Send the caller's agent id to servers as a `gen_ai.agent.id` W3C baggage
   * entry in `params._meta`, and record the one a request carries on the
   * server's span, so both observations of a call name the same agent.
   * The id sent is `agentId`, else the current baggage's, else what the
   * mcpwatch collector derives from the resource by default
   * (`service.name`/`service.instance.id`, else `host.name`). Default true
   * (needs propagateContext).
   */
  propagateAgentId?: boolean;
}

/** Attribute names (OTel semconv v1.39 MCP / GenAI, and mcpwatch's own for identity). */
export const ATTR = {
  METHOD: 'mcp.method.name',
  REQUEST_ID: 'jsonrpc.request.id',
  SESSION_ID: 'mcp.session.id',
  PROTOCOL_VERSION: 'mcp.protocol.version',
  RESOURCE_URI: 'mcp.resource.uri',
  NETWORK_TRANSPORT: 'network.transport',
  NETWORK_PROTOCOL_NAME: 'network.protocol.name',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  OPERATION: 'gen_ai.operation.name',
  AGENT_ID: 'gen_ai.agent.id',
  TOOL_NAME: 'gen_ai.tool.name',
  PROMPT_NAME: 'gen_ai.prompt.name',
  TOOL_ARGUMENTS: 'gen_ai.tool.call.arguments',
  TOOL_RESULT: 'gen_ai.tool.call.result',
  TOOL_DEFINITIONS: 'gen_ai.tool.definitions',
  ERROR_TYPE: 'error.type',
  STATUS_CODE: 'rpc.response.status_code',
  // No semconv names exist for MCP peer identity; these are the mcpwatch
  // names (docs/event.md, rank 0).
  SERVER_NAME: 'mcpwatch.server_name',
  SERVER_VERSION: 'mcpwatch.server_version',
  CLIENT_NAME: 'mcpwatch.client_name',
  CLIENT_VERSION: 'mcpwatch.client_version',
  TOOL_DEFINITIONS_DROPPED: 'mcpwatch.tool_definitions_dropped',
} as const;

const TRUNCATED = '…[TRUNCATED]';
const INSTRUMENTED = Symbol.for('mcpwatch.mcp-capture.instrumented');

type Role = 'client' | 'server';
type AnyRecord = Record<string, any>;
type Handler = (request: AnyRecord, extra: AnyRecord) => unknown;
type Implementation = { name?: string; version?: string } | undefined;

/** The parts of the SDK's Protocol we use (Client and Server both have them). */
interface ProtocolLike {
  request: (...args: any[]) => Promise<unknown>;
  setRequestHandler?: (...args: any[]) => void;
  transport?: AnyRecord;
  [key: string | symbol]: any;
}

interface Settings {
  tracer: Tracer;
  content: boolean;
  maxContent: number;
  definitions: boolean;
  maxDefinitions: number;
  propagate: boolean;
  agentId?: string;
  propagateAgent: boolean;
}

interface State {
  role: Role;
  s: Settings;
  protocolVersion?: string;
  self: () => Implementation;
  peer?: Implementation;
}

/**
 * Instruments an SDK Client: a CLIENT span per request it sends, a SERVER
 * span per request it handles (roots/list, sampling, elicitation from the
 * server). Call before or after connect(); returns the same client.
 */
export function instrumentClient<T extends object>(client: T, options: CaptureOptions = {}): T {
  const p = client as unknown as ProtocolLike;
  instrumentProtocol(p, {
    role: 'client',
    s: settings(options),
    self: () => p._clientInfo as Implementation,
  });
  return client;
}

/**
 * Instruments an SDK Server or McpServer (its `.server`): a SERVER span per
 * request it handles, a CLIENT span per request it sends to the client.
 * Call before connect(); returns the same object.
 */
export function instrumentServer<T extends object>(server: T, options: CaptureOptions = {}): T {
  const any = server as AnyRecord;
  // McpServer is a facade whose Protocol is `.server`.
  const p = (typeof any.request === 'function' ? any : any.server) as ProtocolLike;
  if (!p || typeof p.request !== 'function') {
    throw new TypeError('instrumentServer: expected an MCP SDK Server or McpServer');
  }
  instrumentProtocol(p, {
    role: 'server',
    s: settings(options),
    self: () => p._serverInfo as Implementation,
    // The client's name/version, known once initialize was handled.
    get peer() {
      return typeof p.getClientVersion === 'function' ? (p.getClientVersion() as Implementation) : undefined;
    },
  });
  return server;
}

function settings(o: CaptureOptions): Settings {
  const provider = o.tracerProvider ?? trace.getTracerProvider();
  return {
    tracer: provider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION),
    content: o.captureContent ?? true,
    maxContent: Math.max(64, o.maxContentBytes ?? 16384),
    definitions: o.captureToolDefinitions ?? true,
    maxDefinitions: Math.max(64, o.maxToolDefinitionsBytes ?? 65536),
    propagate: o.propagateContext ?? true,
    agentId: o.agentId || undefined,
    propagateAgent: o.propagateAgentId ?? true,
  };
}

function instrumentProtocol(p: ProtocolLike, st: State): void {
  if (p[INSTRUMENTED]) return; // idempotent: one span per request, not two
  Object.defineProperty(p, INSTRUMENTED, { value: true });

  // Hook 1: outgoing requests.
  const origRequest = p.request;
  p.request = function (this: ProtocolLike, req: AnyRecord, schema?: unknown, options?: unknown) {
    return outgoing(st, this ?? p, origRequest, req, schema, options);
  };

  // Hook 2: incoming requests, at the handler lookup.
  const handlers = p._requestHandlers as Map<string, Handler> | undefined;
  const wrapped = new WeakMap<Handler, Handler>();
  const wrap = (method: string, h: Handler): Handler => {
    let w = wrapped.get(h);
    if (!w) {
      w = (request, extra) => incoming(st, p, method, h, request, extra);
      wrapped.set(h, w);
    }
    return w;
  };
  if (handlers instanceof Map) {
    const get = handlers.get.bind(handlers);
    handlers.get = (method: string) => {
      const h = get(method);
      return h ? wrap(method, h) : h;
    };
  } else if (typeof p.setRequestHandler === 'function') {
    const set = p.setRequestHandler;
    p.setRequestHandler = function (this: ProtocolLike, schema: AnyRecord, handler: Handler) {
      const method: string = schema?.shape?.method?.value ?? schema?.shape?.method?._def?.value ?? '';
      return set.call(this, schema, method ? wrap(method, handler) : handler);
    };
  }
}

// ---------------------------------------------------------------- outgoing

function outgoing(
  st: State,
  p: ProtocolLike,
  orig: ProtocolLike['request'],
  req: AnyRecord,
  schema: unknown,
  options: unknown,
): Promise<unknown> {
  const method = req?.method;
  if (typeof method !== 'string') return orig.call(p, req, schema, options);
  const params: AnyRecord | undefined = req.params;
  const attrs = requestAttributes(st, method, params);
  Object.assign(attrs, transportAttributes(p.transport));
  const sid = p.transport?.sessionId;
  if (typeof sid === 'string' && sid) attrs[ATTR.SESSION_ID] = sid;
  if (st.s.agentId && st.role === 'client') attrs[ATTR.AGENT_ID] = st.s.agentId;
  if (st.s.propagateAgent && SERVER_TO_CLIENT.has(method)) {
    // A server asking its client: the agent is the caller of the request
    // being handled (see incoming).
    const caller = context.active().getValue(CALLER_AGENT);
    if (typeof caller === 'string' && caller) attrs[ATTR.AGENT_ID] = caller;
  }
  const span = st.s.tracer.startSpan(spanName(method, params), { kind: SpanKind.CLIENT, attributes: attrs });
  const ctx = trace.setSpan(context.active(), span);

  let sent = req;
  if (st.s.propagate) {
    const carrier: Record<string, string> = {};
    inject(ctx, span.spanContext(), carrier);
    if (st.s.propagateAgent && !SERVER_TO_CLIENT.has(method)) sendCallerAgent(st, ctx, span, carrier);
    // A copy: the caller's object is left alone.
    sent = { ...req, params: { ...(params ?? {}), _meta: { ...(params?._meta ?? {}), ...carrier } } };
  }

  // Protocol.request assigns `this._requestMessageId++` synchronously before
  // sending; reading it around the call gives the JSON-RPC id without
  // touching the transport.
  const before = p._requestMessageId;
  let result: Promise<unknown>;
  try {
    result = context.with(ctx, () => orig.call(p, sent, schema, options));
  } catch (err) {
    fail(span, err);
    throw err;
  }
  if (typeof before === 'number' && p._requestMessageId === before + 1) {
    span.setAttribute(ATTR.REQUEST_ID, String(before));
  }
  return Promise.resolve(result).then(
    (value) => {
      if (method === 'initialize' && st.role === 'client') learnFromInitialize(st, value as AnyRecord, span);
      // A streamable HTTP session id arrives with the initialize answer.
      const sidAfter = p.transport?.sessionId;
      if (!sid && typeof sidAfter === 'string' && sidAfter) span.setAttribute(ATTR.SESSION_ID, sidAfter);
      finish(st, span, method, value as AnyRecord);
      return value;
    },
    (err) => {
      fail(span, err);
      throw err;
    },
  );
}

function learnFromInitialize(st: State, result: AnyRecord | undefined, span: Span): void {
  if (!result) return;
  if (typeof result.protocolVersion === 'string') {
    st.protocolVersion = result.protocolVersion;
    span.setAttribute(ATTR.PROTOCOL_VERSION, result.protocolVersion);
  }
  if (result.serverInfo && typeof result.serverInfo === 'object') {
    st.peer = result.serverInfo;
    setIdentity(span, ATTR.SERVER_NAME, ATTR.SERVER_VERSION, result.serverInfo);
  }
}

// ---------------------------------------------------------------- incoming

function incoming(st: State, p: ProtocolLike, method: string, h: Handler, request: AnyRecord, extra: AnyRecord): Promise<unknown> {
  const params: AnyRecord | undefined = request?.params;
  const ambient = context.active();
  let parent = ambient;
  if (st.s.propagate && params?._meta && typeof params._meta === 'object') parent = extract(ambient, params._meta);
  // The conventions: parent = the context from _meta, and a link to the
  // ambient context (e.g. an HTTP server span) when there is one.
  const links: Link[] = [];
  const amb = trace.getSpanContext(ambient);
  const par = trace.getSpanContext(parent);
  if (amb && trace.isSpanContextValid(amb) && par && amb.spanId !== par.spanId) links.push({ context: amb });

  if (method === 'initialize' && st.role === 'server') {
    const v = params?.protocolVersion;
    if (typeof v === 'string') st.protocolVersion = v; // the answer may lower it; see finish
  }
  const attrs = requestAttributes(st, method, params);
  const id = extra?.requestId ?? request?.id;
  if (id !== undefined && id !== null) attrs[ATTR.REQUEST_ID] = String(id);
  const sid = extra?.sessionId ?? p.transport?.sessionId;
  if (typeof sid === 'string' && sid) attrs[ATTR.SESSION_ID] = sid;
  if (st.s.propagate && st.s.propagateAgent && !SERVER_TO_CLIENT.has(method)) {
    // The calling agent, not this server process.
    const caller = baggageEntry(params?._meta?.baggage, ATTR.AGENT_ID);
    if (caller) attrs[ATTR.AGENT_ID] = caller;
  }
  Object.assign(attrs, transportAttributes(p.transport, extra));
  if (!attrs[ATTR.PROTOCOL_VERSION]) {
    const hv = extra?.requestInfo?.headers?.['mcp-protocol-version'];
    if (typeof hv === 'string' && hv) attrs[ATTR.PROTOCOL_VERSION] = hv;
  }
  const span = st.s.tracer.startSpan(spanName(method, params), { kind: SpanKind.SERVER, attributes: attrs, links }, parent);
  let ctx = trace.setSpan(parent, span);
  const caller = attrs[ATTR.AGENT_ID];
  if (typeof caller === 'string') ctx = ctx.setValue(CALLER_AGENT, caller);
  let result: unknown;
  try {
    result = context.with(ctx, () => h(request, extra));
  } catch (err) {
    fail(span, err);
    throw err;
  }
  return Promise.resolve(result).then(
    (value) => {
      if (method === 'initialize' && st.role === 'server') {
        const v = (value as AnyRecord)?.protocolVersion;
        if (typeof v === 'string') {
          st.protocolVersion = v;
          span.setAttribute(ATTR.PROTOCOL_VERSION, v);
        }
        setIdentity(span, ATTR.CLIENT_NAME, ATTR.CLIENT_VERSION, params?.clientInfo);
      }
      finish(st, span, method, value as AnyRecord);
      return value;
    },
    (err) => {
      fail(span, err);
      throw err;
    },
  );
}

// ---------------------------------------------------------------- shared

function spanName(method: string, params: AnyRecord | undefined): string {
  // `{mcp.method.name} {target}`: target = tool or prompt name (low
  // cardinality); resource URIs stay out of the name.
  if ((method === 'tools/call' || method === 'prompts/get') && typeof params?.name === 'string' && params.name) {
    return `${method} ${params.name}`;
  }
  return method;
}

function requestAttributes(st: State, method: string, params: AnyRecord | undefined): Attributes {
  const a: Attributes = { [ATTR.METHOD]: method };
  if (st.protocolVersion) a[ATTR.PROTOCOL_VERSION] = st.protocolVersion;
  if (method === 'tools/call') {
    a[ATTR.OPERATION] = 'execute_tool';
    if (typeof params?.name === 'string') a[ATTR.TOOL_NAME] = params.name;
    if (st.s.content) a[ATTR.TOOL_ARGUMENTS] = capJSON(params?.arguments ?? {}, st.s.maxContent);
  } else if (method === 'prompts/get') {
    if (typeof params?.name === 'string') a[ATTR.PROMPT_NAME] = params.name;
  } else if (typeof params?.uri === 'string' && method.startsWith('resources/')) {
    a[ATTR.RESOURCE_URI] = params.uri;
  }
  // Identity: the MCP server's and client's names, whichever side we are.
  const self = st.self();
  const peer = st.peer;
  if (st.role === 'client') {
    setIdentityAttrs(a, ATTR.CLIENT_NAME, ATTR.CLIENT_VERSION, self);
    setIdentityAttrs(a, ATTR.SERVER_NAME, ATTR.SERVER_VERSION, peer);
  } else {
    setIdentityAttrs(a, ATTR.SERVER_NAME, ATTR.SERVER_VERSION, self);
    setIdentityAttrs(a, ATTR.CLIENT_NAME, ATTR.CLIENT_VERSION, peer);
  }
  return a;
}

function setIdentityAttrs(a: Attributes, nameKey: string, versionKey: string, impl: Implementation): void {
  if (impl && typeof impl.name === 'string' && impl.name) a[nameKey] = impl.name;
  if (impl && typeof impl.version === 'string' && impl.version) a[versionKey] = impl.version;
}

function setIdentity(span: Span, nameKey: string, versionKey: string, impl: Implementation): void {
  const a: Attributes = {};
  setIdentityAttrs(a, nameKey, versionKey, impl);
  span.setAttributes(a);
}

/** network.transport (+ protocol, server address) from the SDK transport class. */
function transportAttributes(t: AnyRecord | undefined, extra?: AnyRecord): Attributes {
  const a: Attributes = {};
  const name: string = t?.constructor?.name ?? '';
  if (/stdio/i.test(name)) {
    a[ATTR.NETWORK_TRANSPORT] = 'pipe';
  } else if (/streamablehttp|sse/i.test(name) || extra?.requestInfo) {
    a[ATTR.NETWORK_TRANSPORT] = 'tcp';
    a[ATTR.NETWORK_PROTOCOL_NAME] = 'http';
  } else if (/websocket/i.test(name)) {
    a[ATTR.NETWORK_TRANSPORT] = 'tcp';
    a[ATTR.NETWORK_PROTOCOL_NAME] = 'websocket';
  }
  // Client transports keep the server URL (private `_url`, a URL).
  const url = t?._url;
  if (url instanceof URL && url.hostname) {
    a[ATTR.SERVER_ADDRESS] = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port ? Number(url.port) : url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80;
    a[ATTR.SERVER_PORT] = port;
  }
  return a;
}

function finish(st: State, span: Span, method: string, result: AnyRecord | undefined): void {
  try {
    if (method === 'tools/call' && result && typeof result === 'object') {
      if (st.s.content) span.setAttribute(ATTR.TOOL_RESULT, capJSON(result, st.s.maxContent));
      if (result.isError === true) {
        span.setAttribute(ATTR.ERROR_TYPE, 'tool_error');
        const first = Array.isArray(result.content) ? result.content.find((c: AnyRecord) => c?.type === 'text') : undefined;
        span.setStatus({ code: SpanStatusCode.ERROR, message: typeof first?.text === 'string' ? cut(first.text, 256) : 'tool_error' });
      }
    } else if (method === 'tools/list' && st.s.definitions && Array.isArray(result?.tools)) {
      const { json, dropped } = toolDefinitions(result!.tools, st.s.maxDefinitions);
      span.setAttribute(ATTR.TOOL_DEFINITIONS, json);
      if (dropped > 0) span.setAttribute(ATTR.TOOL_DEFINITIONS_DROPPED, dropped);
    }
  } finally {
    span.end();
  }
}

function fail(span: Span, err: unknown): void {
  const e = err as AnyRecord | undefined;
  const code = e?.code;
  let type: string;
  if (typeof code === 'number' && Number.isSafeInteger(code)) {
    type = String(code); // JSON-RPC error code, as the conventions ask
    span.setAttribute(ATTR.STATUS_CODE, type);
  } else if (typeof e?.name === 'string' && e.name && e.name !== 'Error') {
    type = e.name;
  } else {
    type = '_OTHER';
  }
  span.setAttribute(ATTR.ERROR_TYPE, type);
  const message = typeof e?.message === 'string' ? e.message : String(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: cut(message, 1024) });
  span.end();
}

// ---------------------------------------------------------------- content

/** JSON text of v, at most max UTF-8 bytes; a cut text ends in …[TRUNCATED]. */
export function capJSON(v: unknown, max: number): string {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'null';
  } catch {
    s = JSON.stringify(String(v));
  }
  return capString(s, max);
}

function capString(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  const marker = Buffer.byteLength(TRUNCATED, 'utf8');
  const buf = Buffer.from(s, 'utf8');
  let end = Math.max(0, max - marker);
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence
  return buf.subarray(0, end).toString('utf8') + TRUNCATED;
}

function cut(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/** The advertised tools as a JSON array, whole tools only, within max bytes. */
function toolDefinitions(tools: unknown[], max: number): { json: string; dropped: number } {
  const parts: string[] = [];
  let size = 2;
  let dropped = 0;
  for (const t of tools) {
    let j: string;
    try {
      j = JSON.stringify(t);
    } catch {
      dropped++;
      continue;
    }
    const n = Buffer.byteLength(j, 'utf8') + (parts.length ? 1 : 0);
    if (size + n > max) {
      dropped++;
      continue;
    }
    parts.push(j);
    size += n;
  }
  return { json: `[${parts.join(',')}]`, dropped };
}

// ---------------------------------------------------------------- context

// Requests a server sends to its client: the agent is the receiver, so no
// caller agent id is sent or taken with them.
const SERVER_TO_CLIENT = new Set(['roots/list', 'sampling/createMessage', 'elicitation/create']);

// The calling agent of the request a server is handling, for the requests
// it sends its client meanwhile (needs a context manager, as nesting does).
const CALLER_AGENT = createContextKey('mcpwatch caller agent id');

/** Adds the caller's agent id to the carrier's W3C baggage (unless the application set one). */
function sendCallerAgent(st: State, ctx: Context, span: Span, carrier: Record<string, string>): void {
  const current = carrier.baggage ?? '';
  if (baggageEntry(current, ATTR.AGENT_ID) !== undefined) return;
  const agent = propagation.getBaggage(ctx)?.getEntry(ATTR.AGENT_ID)?.value || st.s.agentId || resourceAgent(span);
  if (!agent) return;
  const entry = `${ATTR.AGENT_ID}=${encodeURIComponent(agent)}`;
  carrier.baggage = current.trim() ? `${current},${entry}` : entry;
}

/** The value of key in a W3C baggage header, or undefined. */
function baggageEntry(header: unknown, key: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const member of header.split(',')) {
    const eq = member.indexOf('=');
    if (eq < 0 || member.slice(0, eq).trim() !== key) continue;
    const raw = member.slice(eq + 1).split(';')[0].trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return undefined; // malformed percent-encoding: no id rather than a wrong one
    }
  }
  return undefined;
}

/** The mcpwatch collector's default agent id from the SDK span's resource (docs/event.md). */
function resourceAgent(span: Span): string | undefined {
  const res = (span as unknown as { resource?: { attributes?: Attributes } }).resource?.attributes ?? {};
  const service = res['service.name'];
  if (typeof service === 'string' && service && !service.startsWith('unknown_service')) {
    const instance = res['service.instance.id'];
    return typeof instance === 'string' && instance ? `${service}/${instance}` : service;
  }
  const host = res['host.name'];
  return typeof host === 'string' && host ? host : undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Writes traceparent/tracestate (and whatever else the global propagator
 * writes, e.g. baggage) into carrier. The global propagator is a no-op
 * unless an SDK registered one, so W3C trace context is written here too.
 */
function inject(ctx: Context, sc: SpanContext, carrier: Record<string, string>): void {
  propagation.inject(ctx, carrier);
  if (!carrier.traceparent && trace.isSpanContextValid(sc)) {
    carrier.traceparent = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`;
    const ts = sc.traceState?.serialize();
    if (ts) carrier.tracestate = ts;
  }
}

function extract(base: Context, meta: AnyRecord): Context {
  const carrier: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (typeof v === 'string') carrier[k] = v;
  const ctx = propagation.extract(base, carrier);
  const got = trace.getSpanContext(ctx);
  const had = trace.getSpanContext(base);
  if (got && trace.isSpanContextValid(got) && (!had || got.spanId !== had.spanId || got.traceId !== had.traceId)) return ctx;
  const m = TRACEPARENT.exec(carrier.traceparent ?? '');
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return base;
  const sc: SpanContext = {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!trace.isSpanContextValid(sc)) return base;
  if (carrier.tracestate) {
    try {
      sc.traceState = createTraceState(carrier.tracestate);
    } catch {
      /* a malformed tracestate is dropped, the parent is kept */
    }
  }
  return trace.setSpanContext(base, sc);
}
