"""Content capture for the official MCP Python SDK's own OpenTelemetry spans.

``instrument()`` makes the spans that ``mcp`` 2.x already emits (CLIENT
``MCP send <method> <target>``, SERVER ``<method> <target>``; with fastmcp its
SERVER span instead of the SDK's) carry what security monitoring needs: tool
call arguments and results, the tool definitions a server advertises, server
and client identity. No span is created. See README.md for every attribute and
``_capture.py`` for where each hook sits and why.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import warnings
from importlib import metadata
from typing import Any

from . import _capture
from ._capture import Config

__all__ = ["Config", "TESTED_MCP_VERSIONS", "__version__", "instrument", "is_instrumented", "uninstrument"]

__version__ = "0.1.0"

TESTED_MCP_VERSIONS = ("2.3.0",)
"""``mcp`` releases the hooks are tested against. Others are used when the hook
points still have the expected shape, with a warning."""

logger = logging.getLogger("mcpwatch_mcp_capture")

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


def _env_bool(name: str) -> bool | None:
    v = os.environ.get(name)
    if v is None or v.strip() == "":
        return None
    return v.strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v.strip() == "":
        return None
    try:
        return int(v)
    except ValueError:
        logger.warning("mcpwatch capture: %s=%r is not an integer; ignored", name, v)
        return None


def _env_list(name: str) -> list[str] | None:
    v = os.environ.get(name)
    if v is None:
        return None
    return [k.strip() for k in v.split(",") if k.strip()]


def _pick(arg: Any, env: Any, default: Any) -> Any:
    if arg is not None:
        return arg
    return env if env is not None else default


def _hook_points() -> list[tuple[type, str, list[str]]]:
    from mcp.server.runner import ServerRunner
    from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

    return [
        (JSONRPCDispatcher, "_write", ["self", "message", "metadata"]),
        (JSONRPCDispatcher, "_resolve_pending", ["self", "request_id", "outcome"]),
        (ServerRunner, "_compose_server_middleware", ["self", "inner"]),
    ]


def _check_shape(points: list[tuple[type, str, list[str]]]) -> str | None:
    for cls, name, params in points:
        fn = cls.__dict__.get(name)
        if fn is None:
            return f"{cls.__qualname__}.{name} is missing"
        try:
            got = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            return f"{cls.__qualname__}.{name} has no signature"
        if got != params:
            return f"{cls.__qualname__}.{name}{tuple(got)} != {tuple(params)}"
    return None


def _make_write(orig: Any) -> Any:
    from mcp_types import JSONRPCRequest

    @functools.wraps(orig)
    async def _write(self: Any, message: Any, metadata: Any = None) -> None:
        if isinstance(message, JSONRPCRequest):
            try:
                _capture.client_request(self, message)
            except Exception:
                logger.debug("mcpwatch capture: client request hook failed", exc_info=True)
        return await orig(self, message, metadata)

    _write._mcpwatch_capture = True  # type: ignore[attr-defined]
    return _write


def _make_resolve(orig: Any) -> Any:
    @functools.wraps(orig)
    def _resolve_pending(self: Any, request_id: Any, outcome: Any) -> None:
        try:
            _capture.client_response(self, request_id, outcome)
        except Exception:
            logger.debug("mcpwatch capture: client response hook failed", exc_info=True)
        return orig(self, request_id, outcome)

    _resolve_pending._mcpwatch_capture = True  # type: ignore[attr-defined]
    return _resolve_pending


def _make_compose(orig: Any) -> Any:
    @functools.wraps(orig)
    def _compose_server_middleware(self: Any, inner: Any) -> Any:
        return orig(self, _capture.wrap_inner(self, inner))

    _compose_server_middleware._mcpwatch_capture = True  # type: ignore[attr-defined]
    return _compose_server_middleware


_FACTORIES = {"_write": _make_write, "_resolve_pending": _make_resolve, "_compose_server_middleware": _make_compose}


def instrument(
    *,
    capture_arguments: bool | None = None,
    capture_results: bool | None = None,
    capture_tool_definitions: bool | None = None,
    max_value_bytes: int | None = None,
    max_definitions_bytes: int | None = None,
    agent_id: str | None = None,
    baggage_keys: tuple[str, ...] | list[str] | None = None,
    propagate_agent_id: bool | None = None,
) -> bool:
    """Add content and identity attributes to the MCP SDK's spans. Idempotent.

    Arguments left as None come from the environment, else the defaults:
    ``MCPWATCH_CAPTURE_CONTENT`` (arguments and results, default on),
    ``MCPWATCH_CAPTURE_TOOL_DEFINITIONS`` (default on),
    ``MCPWATCH_CAPTURE_MAX_BYTES`` (arguments, results: 16384),
    ``MCPWATCH_CAPTURE_MAX_DEFINITIONS_BYTES`` (65536), ``MCPWATCH_AGENT_ID``
    (``gen_ai.agent.id`` on client spans), ``MCPWATCH_CAPTURE_BAGGAGE_KEYS``
    (comma-separated W3C baggage entries copied to span attributes, client side
    from the current context, server side from the request's ``_meta``;
    default ``gen_ai.conversation.id``, empty for none),
    ``MCPWATCH_CAPTURE_PROPAGATE_AGENT`` (send the caller's agent id to servers
    in the request's ``_meta`` baggage and record it on their spans; default
    on). A cap of 0 means no cap.

    Calling it again replaces the configuration. Returns False (and changes
    nothing) when ``mcp`` is not importable or its hook points changed shape.
    """
    content = _env_bool("MCPWATCH_CAPTURE_CONTENT")
    cfg = Config(
        capture_arguments=_pick(capture_arguments, content, True),
        capture_results=_pick(capture_results, content, True),
        capture_tool_definitions=_pick(capture_tool_definitions, _env_bool("MCPWATCH_CAPTURE_TOOL_DEFINITIONS"), True),
        max_value_bytes=_pick(max_value_bytes, _env_int("MCPWATCH_CAPTURE_MAX_BYTES"), 16384),
        max_definitions_bytes=_pick(max_definitions_bytes, _env_int("MCPWATCH_CAPTURE_MAX_DEFINITIONS_BYTES"), 65536),
        agent_id=_pick(agent_id, os.environ.get("MCPWATCH_AGENT_ID") or None, None),
        baggage_keys=tuple(_pick(baggage_keys, _env_list("MCPWATCH_CAPTURE_BAGGAGE_KEYS"), ("gen_ai.conversation.id",))),
        propagate_agent_id=_pick(propagate_agent_id, _env_bool("MCPWATCH_CAPTURE_PROPAGATE_AGENT"), True),
    )
    with _lock:
        _capture.config = cfg
        if _originals:
            return True
        try:
            points = _hook_points()
        except ImportError as e:
            warnings.warn(f"mcpwatch_mcp_capture: mcp is not importable ({e}); nothing instrumented", stacklevel=2)
            return False
        problem = _check_shape(points)
        if problem is not None:
            warnings.warn(
                f"mcpwatch_mcp_capture: this mcp release does not have the expected hook points ({problem}); "
                "nothing instrumented",
                stacklevel=2,
            )
            return False
        try:
            version = metadata.version("mcp")
        except metadata.PackageNotFoundError:
            version = "unknown"
        if version not in TESTED_MCP_VERSIONS:
            warnings.warn(
                f"mcpwatch_mcp_capture: tested with mcp {', '.join(TESTED_MCP_VERSIONS)}, found {version}; "
                "the hook points have the expected shape, instrumenting anyway",
                stacklevel=2,
            )
        for cls, name, _ in points:
            orig = cls.__dict__[name]
            _originals[(cls, name)] = orig
            setattr(cls, name, _FACTORIES[name](orig))
        return True


def uninstrument() -> None:
    """Remove the hooks (spans created afterwards carry only the SDK's attributes)."""
    with _lock:
        for (cls, name), orig in _originals.items():
            if getattr(cls.__dict__.get(name), "_mcpwatch_capture", False):
                setattr(cls, name, orig)
        _originals.clear()
        _capture.config = Config()


def is_instrumented() -> bool:
    return bool(_originals)
