"""Turning MCP payloads into span attribute values: JSON text, size caps."""

from __future__ import annotations

import json
from typing import Any

TRUNCATION_MARK = "…[TRUNCATED]"
"""Appended to a capped value (the same marker the mcpwatch collector uses)."""

_MARK_BYTES = len(TRUNCATION_MARK.encode("utf-8"))


def to_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is; pydantic models are dumped in wire form.

    Never raises: anything json cannot encode is rendered with ``str``.
    """
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(by_alias=True, mode="json", exclude_none=True)
        except Exception:  # a model that cannot dump itself: fall back to str()
            return str(value)
    return value


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, ending in TRUNCATION_MARK.

    Cuts at a character boundary. Returns the text and whether it was cut.
    A limit of 0 or less means no limit.
    """
    if limit <= 0:
        return text, False
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text, False
    if limit <= _MARK_BYTES:
        return raw[:limit].decode("utf-8", "ignore"), True
    head = raw[: limit - _MARK_BYTES].decode("utf-8", "ignore")
    return head + TRUNCATION_MARK, True


def without_meta(result: Any) -> Any:
    """A result dict without its ``_meta`` (protocol envelope: serverInfo stamp, trace context)."""
    result = _plain(result)
    if isinstance(result, dict) and "_meta" in result:
        return {k: v for k, v in result.items() if k != "_meta"}
    return result


_DEFINITION_KEYS = ("name", "description", "inputSchema", "annotations")


def tool_definitions(tools: Any, limit: int) -> tuple[str | None, int]:
    """The ``gen_ai.tool.definitions`` JSON array for a ``tools/list`` result's ``tools``.

    Each element keeps ``name``, ``description``, ``inputSchema`` and
    ``annotations`` (those present). The array stays valid JSON: when it would
    exceed ``limit`` bytes, whole tools that do not fit are left out (never cut
    in the middle, a cut description would hide what the poisoning detections
    look for). Returns the JSON (None when there is no tool) and the number of
    tools left out.
    """
    tools = _plain(tools)
    if not isinstance(tools, list):
        return None, 0
    parts: list[str] = []
    size = 2  # the brackets
    dropped = 0
    for tool in tools:
        tool = _plain(tool)
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        text = to_json({k: tool[k] for k in _DEFINITION_KEYS if tool.get(k) is not None})
        add = len(text.encode("utf-8")) + (1 if parts else 0)
        if limit > 0 and size + add > limit:
            dropped += 1
            continue
        parts.append(text)
        size += add
    if not parts:
        return None, dropped
    return "[" + ",".join(parts) + "]", dropped
