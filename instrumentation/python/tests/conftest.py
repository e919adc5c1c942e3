"""Shared fixtures: one global TracerProvider with an in-memory exporter, a
loopback HTTP server runner, and the capture hooks on/off."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcpwatch_mcp_capture

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)

CAPTURE_KEYS = (
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "mcpwatch.tool_definitions_dropped",
    "mcp.server.name",
    "mcp.server.version",
    "mcp.client.name",
    "mcp.client.version",
    "gen_ai.agent.id",
    "gen_ai.conversation.id",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def bare() -> Iterator[None]:
    mcpwatch_mcp_capture.uninstrument()
    yield


@pytest.fixture
def capture() -> Iterator[None]:
    assert mcpwatch_mcp_capture.instrument()
    yield
    mcpwatch_mcp_capture.uninstrument()


@contextlib.asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (an ephemeral port bound here, so no race); yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


def by_name(finished: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str, kind: trace.SpanKind) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name and s.kind == kind]


def one(finished: Any, name: str, kind: trace.SpanKind) -> ReadableSpan:
    found = by_name(finished, name, kind)
    assert len(found) == 1, f"{len(found)} spans {name!r} {kind}: {[(s.name, s.kind) for s in finished]}"
    return found[0]


def attr_json(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None and key in span.attributes, f"{span.name}: no {key} in {dict(span.attributes or {})}"
    return json.loads(str(span.attributes[key]))


def shape(finished: Any) -> list[tuple[str, str, str]]:
    """The spans as (scope, kind, name), sorted: to compare runs span for span."""
    return sorted((s.instrumentation_scope.name if s.instrumentation_scope else "", s.kind.name, s.name) for s in finished)
