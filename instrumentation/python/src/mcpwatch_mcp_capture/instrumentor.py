"""``McpCaptureInstrumentor``: the same hooks as an OpenTelemetry ``BaseInstrumentor``.

Needs the ``instrumentor`` extra (``opentelemetry-instrumentation``). Registered
under the ``opentelemetry_instrumentor`` entry point, so ``opentelemetry-instrument``
(zero-code instrumentation) enables it like any other instrumentation.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import instrument, uninstrument

_INSTRUMENTS = ("mcp >= 2.3.0, < 2.4",)


class McpCaptureInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``McpCaptureInstrumentor().instrument(capture_results=False, ...)``: same keywords as ``instrument()``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        known = ("capture_arguments", "capture_results", "capture_tool_definitions",
                 "max_value_bytes", "max_definitions_bytes", "agent_id", "baggage_keys",
                 "propagate_agent_id")
        instrument(**{k: v for k, v in kwargs.items() if k in known})

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
