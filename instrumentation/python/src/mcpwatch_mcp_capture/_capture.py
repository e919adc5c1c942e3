"""The hooks: what is added to which span, and where.

The MCP Python SDK 2.x traces itself but records no content. These hooks add
attributes to the spans it already creates (never a span of their own):

Client side, ``mcp.shared.jsonrpc_dispatcher.JSONRPCDispatcher``:

* ``_write`` -- ``send_raw_request`` opens the ``MCP send <method>`` CLIENT span,
  builds the JSON-RPC request and writes it with ``self._write`` *inside* that
  span. So when ``_write`` sees a ``JSONRPCRequest``, the current span is the
  SDK's span for exactly that request (we check method and request id), and the
  request's params are in hand: arguments, tool/prompt name, resource URI,
  clientInfo. The span is remembered under the request id.
* ``_resolve_pending`` -- the read loop hands every response to this method,
  which wakes the waiting ``send_raw_request``. It runs *before* the waiter
  resumes, so the CLIENT span is still open: the result, the tool definitions
  and the server's identity (``serverInfo`` of ``initialize``, or the
  ``io.modelcontextprotocol/serverInfo`` stamp every 2026-07-28 result
  carries) are added there. Identity is remembered per dispatcher (one
  connection) and put on the later spans of that connection at ``_write``.

Server side, ``mcp.server.runner.ServerRunner._compose_server_middleware``:

* it wraps the innermost handler (method lookup, params validation, handler,
  serialisation to the wire dict) in ``Server.middleware``. The SDK's
  ``OpenTelemetryMiddleware`` -- or fastmcp's ``FastMCPServerMiddleware``, which
  replaces it and opens fastmcp's SERVER span -- is outside it, so when the
  innermost handler runs the current span is that SERVER span, and the runner
  knows the server (``self.server``: name, version) and the connection
  (client info, session id). We wrap ``inner`` before handing it to the
  original, so arguments are added before the handler runs and the result
  after. A span is only touched when it is a recording SERVER span whose
  ``mcp.method.name`` is the request's method; with the SDK's middleware
  removed (and no fastmcp) there is no such span and nothing is added.

Both sides also copy configured W3C baggage entries (by default
``gen_ai.conversation.id``) to the span: the client from its current context,
the server from the ``baggage`` entry the client's SDK injected into ``_meta``.

The caller's agent id travels the same way: the client adds a
``gen_ai.agent.id`` baggage entry to the ``_meta`` of each request it sends to
a server, and the server puts it on its SERVER span, so both observations of
one call name the same agent (and count as one call in mcpwatch). The id is
the configured ``agent_id``, else the client span's or the current baggage's
``gen_ai.agent.id``, else what the mcpwatch collector derives from the
client's resource by default (``service.name``/``service.instance.id``, else
``host.name``). A request the server sends its client while it handles a call
(``roots/list``, sampling, elicitation: the SDK makes the CLIENT span in the
server process) carries no id; its span names the agent of the call being
handled and the server (``_handling``, a context variable set around the
handler).

Every hook calls the original unconditionally and never lets its own error
escape into MCP traffic.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace import SpanKind

from ._values import cap, to_json, tool_definitions, without_meta

logger = logging.getLogger("mcpwatch_mcp_capture")

# Attribute names (OTel semantic conventions where one exists; see README).
ARGUMENTS = "gen_ai.tool.call.arguments"
RESULT = "gen_ai.tool.call.result"
DEFINITIONS = "gen_ai.tool.definitions"
DEFINITIONS_DROPPED = "mcpwatch.tool_definitions_dropped"
TOOL_NAME = "gen_ai.tool.name"
OPERATION = "gen_ai.operation.name"
PROMPT_NAME = "gen_ai.prompt.name"
RESOURCE_URI = "mcp.resource.uri"
SESSION_ID = "mcp.session.id"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
ERROR_TYPE = "error.type"
SERVER_NAME = "mcp.server.name"
SERVER_VERSION = "mcp.server.version"
CLIENT_NAME = "mcp.client.name"
CLIENT_VERSION = "mcp.client.version"

METHOD = "mcp.method.name"
REQUEST_ID = "jsonrpc.request.id"

# `_meta` keys of the 2026-07-28 envelope (mcp_types: *_META_KEY).
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"
CLIENT_INFO_META = "io.modelcontextprotocol/clientInfo"

_RESOURCE_METHODS = ("resources/read", "resources/subscribe", "resources/unsubscribe")

# Requests a server sends to its client: the agent is the receiver, so no
# caller agent id is sent or taken with them; their CLIENT span (the
# server's) names the agent of the request being handled (_Handling).
_SERVER_TO_CLIENT = ("roots/list", "sampling/createMessage", "elicitation/create")


@dataclass(frozen=True)
class _Handling:
    """The request a server is handling: its caller's agent id and the server."""

    agent: str | None
    server: tuple[str, str | None] | None


# Set by wrap_inner around the server's handler, so the requests the handler
# sends its client (same task, same context) know whom they serve.
_handling: contextvars.ContextVar[_Handling | None] = contextvars.ContextVar("mcpwatch_capture_handling", default=None)


@dataclass(frozen=True)
class Config:
    """What to capture. ``instrument()`` builds it from its arguments and the environment."""

    capture_arguments: bool = True
    capture_results: bool = True
    capture_tool_definitions: bool = True
    max_value_bytes: int = 16384
    max_definitions_bytes: int = 65536
    agent_id: str | None = None
    baggage_keys: tuple[str, ...] = (CONVERSATION_ID,)
    propagate_agent_id: bool = True


config = Config()
"""The active configuration (replaced by ``instrument()``)."""


# --- shared helpers ----------------------------------------------------------


def _attrs_of(span: Any) -> Any:
    return getattr(span, "attributes", None) or {}


def _is_mcp_span(span: Any, kind: SpanKind, method: str, request_id: str | None) -> bool:
    """Whether ``span`` is the recording MCP span of this kind for this message."""
    if not span.is_recording() or getattr(span, "kind", None) is not kind:
        return False
    attrs = _attrs_of(span)
    if attrs.get(METHOD) != method:
        return False
    return request_id is None or attrs.get(REQUEST_ID) in (None, request_id)


def _identity(info: Any) -> tuple[str, str | None] | None:
    """(name, version) from an MCP Implementation (dict or model)."""
    if info is None:
        return None
    if not isinstance(info, dict):
        dump = getattr(info, "model_dump", None)
        if not callable(dump):
            return None
        info = dump(by_alias=True, mode="json", exclude_none=True)
    name = info.get("name")
    if not isinstance(name, str) or not name:
        return None
    version = info.get("version")
    return name, version if isinstance(version, str) and version else None


def _identity_attrs(out: dict[str, Any], ident: tuple[str, str | None] | None, name_key: str, version_key: str) -> None:
    if ident is None:
        return
    out[name_key] = ident[0]
    if ident[1]:
        out[version_key] = ident[1]


def _meta_of(params: Any) -> dict[str, Any]:
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta if isinstance(meta, dict) else {}


def _request_attrs(out: dict[str, Any], method: str, params: Any) -> None:
    """Attributes read from a request's params (both sides)."""
    if not isinstance(params, dict):
        return
    name = params.get("name")
    if method == "tools/call":
        out[OPERATION] = "execute_tool"
        if isinstance(name, str):
            out[TOOL_NAME] = name
        if config.capture_arguments:
            out[ARGUMENTS] = cap(to_json(params.get("arguments") or {}), config.max_value_bytes)[0]
    elif method == "prompts/get" and isinstance(name, str):
        out[PROMPT_NAME] = name
    elif method in _RESOURCE_METHODS and isinstance(params.get("uri"), str):
        out[RESOURCE_URI] = params["uri"]


def _result_attrs(out: dict[str, Any], span: Any, method: str, result: Any) -> None:
    """Attributes read from a successful result (both sides)."""
    if method == "tools/call":
        body = without_meta(result)
        if config.capture_results:
            out[RESULT] = cap(to_json(body), config.max_value_bytes)[0]
        if isinstance(body, dict) and body.get("isError") is True and ERROR_TYPE not in _attrs_of(span):
            out[ERROR_TYPE] = "tool_error"
    elif method == "tools/list" and config.capture_tool_definitions:
        tools = result.get("tools") if isinstance(result, dict) else getattr(result, "tools", None)
        text, dropped = tool_definitions(tools, config.max_definitions_bytes)
        if text is not None:
            out[DEFINITIONS] = text
        if dropped:
            out[DEFINITIONS_DROPPED] = dropped


_BAGGAGE = W3CBaggagePropagator()


def _baggage_attrs(out: dict[str, Any], ctx: Any = None) -> None:
    """Copy the configured W3C baggage entries (by default gen_ai.conversation.id) to attributes."""
    for key in config.baggage_keys:
        value = baggage.get_baggage(key, ctx)
        if isinstance(value, str) and value:
            out[key] = value


def _resource_agent(span: Any) -> str | None:
    """The collector's default agent id from the span's resource (docs/event.md, identity)."""
    res = getattr(getattr(span, "resource", None), "attributes", None) or {}
    service = res.get("service.name")
    if isinstance(service, str) and service and not service.startswith("unknown_service"):
        instance = res.get("service.instance.id")
        return f"{service}/{instance}" if isinstance(instance, str) and instance else service
    host = res.get("host.name")
    return host if isinstance(host, str) and host else None


def _send_caller_agent(span: Any, method: str, params: dict[str, Any]) -> None:
    """Add the caller's agent id to the request's ``_meta`` baggage (W3C)."""
    if not config.propagate_agent_id or method in _SERVER_TO_CLIENT:
        return
    agent = (config.agent_id or _attrs_of(span).get(AGENT_ID) or baggage.get_baggage(AGENT_ID)
             or _resource_agent(span))
    if not isinstance(agent, str) or not agent:
        return
    meta = params.get("_meta")
    if meta is None:
        meta = params["_meta"] = {}
    if not isinstance(meta, dict):
        return
    current = meta.get("baggage")
    current = current if isinstance(current, str) else ""
    if any(entry.split("=", 1)[0].strip() == AGENT_ID for entry in current.split(",")):
        return  # the application's own entry wins
    entry = f"{AGENT_ID}={quote(agent, safe='')}"
    meta["baggage"] = f"{current},{entry}" if current.strip() else entry


def _set(span: Any, attrs: dict[str, Any]) -> None:
    if attrs and span.is_recording():
        span.set_attributes(attrs)


# --- client side -------------------------------------------------------------

_STATE_ATTR = "_mcpwatch_capture"


@dataclass
class _Conn:
    """What one client connection (dispatcher) has learnt."""

    server: tuple[str, str | None] | None = None
    client: tuple[str, str | None] | None = None
    calls: dict[Any, tuple[Any, str, Any]] = field(default_factory=dict)


def _conn(dispatcher: Any) -> _Conn:
    state = getattr(dispatcher, _STATE_ATTR, None)
    if state is None:
        state = _Conn()
        setattr(dispatcher, _STATE_ATTR, state)
    return state


def _key(request_id: Any) -> Any:
    # The dispatcher's own coercion ("7" and 7 correlate), inlined.
    if isinstance(request_id, str):
        try:
            return int(request_id)
        except ValueError:
            return request_id
    return request_id


def client_request(dispatcher: Any, message: Any) -> None:
    """A JSON-RPC request is being written inside the SDK's CLIENT span."""
    span = trace.get_current_span()
    method = message.method
    if not _is_mcp_span(span, SpanKind.CLIENT, method, str(message.id)):
        return
    params = message.params if isinstance(message.params, dict) else {}
    state = _conn(dispatcher)
    client = _identity(_meta_of(params).get(CLIENT_INFO_META)) or (
        _identity(params.get("clientInfo")) if method == "initialize" else None
    )
    if client is not None:
        state.client = client
    attrs: dict[str, Any] = {}
    _identity_attrs(attrs, state.client, CLIENT_NAME, CLIENT_VERSION)
    _identity_attrs(attrs, state.server, SERVER_NAME, SERVER_VERSION)
    if config.agent_id:
        attrs[AGENT_ID] = config.agent_id
    handling = _handling.get() if method in _SERVER_TO_CLIENT else None
    if handling is not None:
        # This process is a server asking its client while it handles a
        # request: the agent is that request's caller, the server is us.
        if config.propagate_agent_id and handling.agent:
            attrs[AGENT_ID] = handling.agent
        if SERVER_NAME not in attrs:
            _identity_attrs(attrs, handling.server, SERVER_NAME, SERVER_VERSION)
    _baggage_attrs(attrs)  # the application's context, e.g. its conversation id
    _request_attrs(attrs, method, params)
    _set(span, attrs)
    if isinstance(message.params, dict):
        _send_caller_agent(span, method, message.params)
    # Forget requests the dispatcher no longer waits for (timed out, cancelled,
    # connection closed): their spans have ended.
    pending = getattr(dispatcher, "_pending", None)
    if pending is not None and state.calls:
        for k in [k for k in state.calls if k not in pending]:
            del state.calls[k]
    state.calls[_key(message.id)] = (span, method, params.get("name"))


def client_response(dispatcher: Any, request_id: Any, outcome: Any) -> None:
    """A response arrived; the waiting request's CLIENT span is still open."""
    state = getattr(dispatcher, _STATE_ATTR, None)
    if state is None or request_id is None:
        return
    entry = state.calls.pop(_key(request_id), None)
    if entry is None or not isinstance(outcome, dict):
        return  # unknown id, or a JSON-RPC error (the SDK records those itself)
    span, method, _ = entry
    if not span.is_recording():
        return
    server = _identity(_meta_of(outcome).get(SERVER_INFO_META))
    if server is None and method == "initialize":
        server = _identity(outcome.get("serverInfo"))
    if server is not None:
        state.server = server
    attrs: dict[str, Any] = {}
    _identity_attrs(attrs, state.server, SERVER_NAME, SERVER_VERSION)
    _result_attrs(attrs, span, method, outcome)
    _set(span, attrs)


# --- server side -------------------------------------------------------------


def _server_request_attrs(runner: Any, ctx: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    server = runner.server
    _identity_attrs(attrs, _identity({"name": getattr(server, "name", None), "version": getattr(server, "version", None)}),
                    SERVER_NAME, SERVER_VERSION)
    params = ctx.params if isinstance(ctx.params, dict) else {}
    connection = getattr(runner, "connection", None)
    client = _identity(_meta_of(params).get(CLIENT_INFO_META))
    if client is None and ctx.method == "initialize":
        client = _identity(params.get("clientInfo"))
    if client is None and connection is not None:
        client_params = getattr(connection, "client_params", None)
        client = _identity(getattr(client_params, "client_info", None))
    _identity_attrs(attrs, client, CLIENT_NAME, CLIENT_VERSION)
    session_id = getattr(connection, "session_id", None)
    if isinstance(session_id, str) and session_id:
        attrs[SESSION_ID] = session_id
    meta = _meta_of(params)
    if "baggage" in meta and (config.baggage_keys or config.propagate_agent_id):
        # The client's SDK injects its context into `_meta` (traceparent, and
        # baggage with the default propagators). The server's SDK uses the
        # extracted context only as the span's parent; its baggage never
        # becomes current, so it is read from `_meta` here.
        carried = _BAGGAGE.extract(meta)
        _baggage_attrs(attrs, carried)
        caller = baggage.get_baggage(AGENT_ID, carried)
        if config.propagate_agent_id and ctx.method not in _SERVER_TO_CLIENT and isinstance(caller, str) and caller:
            attrs[AGENT_ID] = caller  # the calling agent, not this server process
    _request_attrs(attrs, ctx.method, params)
    return attrs


def wrap_inner(runner: Any, inner: Any) -> Any:
    """Wrap the innermost server handler so it records on the enclosing SERVER span."""

    async def captured(ctx: Any) -> Any:
        span = trace.get_current_span()
        token = None
        try:
            ours = _is_mcp_span(span, SpanKind.SERVER, ctx.method, None)
            if ours:
                attrs = _server_request_attrs(runner, ctx)
                _set(span, attrs)
                server = attrs.get(SERVER_NAME)
                token = _handling.set(_Handling(
                    agent=attrs.get(AGENT_ID),
                    server=(server, attrs.get(SERVER_VERSION)) if isinstance(server, str) else None))
        except Exception:  # never break the request
            logger.debug("mcpwatch capture: server request hook failed", exc_info=True)
            ours = False
        try:
            result = await inner(ctx)
        finally:
            if token is not None:
                _handling.reset(token)
        if ours and result is not None:
            try:
                attrs: dict[str, Any] = {}
                _result_attrs(attrs, span, ctx.method, result)
                _set(span, attrs)
            except Exception:
                logger.debug("mcpwatch capture: server result hook failed", exc_info=True)
        return result

    return captured
