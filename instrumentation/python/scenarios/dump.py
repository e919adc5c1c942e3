#!/usr/bin/env python3
"""List every span of OTLP trace export requests (protobuf), one attribute per line.

    python dump.py FILE.binpb... > SUMMARY.txt

Needs opentelemetry-proto (in every venv-mcp-* venv). Long values are cut at
300 characters in the listing (the files hold them whole).
"""

from __future__ import annotations

import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

KINDS = {v: k.removeprefix("SPAN_KIND_").title() for k, v in Span.SpanKind.items()}
STATUS = {v: k.removeprefix("STATUS_CODE_").title() for k, v in Status.StatusCode.items()}


def value(v: AnyValue) -> str:
    which = v.WhichOneof("value")
    if which == "string_value":
        s = v.string_value
        return repr(s if len(s) <= 300 else s[:300] + f"...[{len(s)} chars]")
    if which == "array_value":
        return "[" + ", ".join(value(x) for x in v.array_value.values) + "]"
    if which == "kvlist_value":
        return "{" + ", ".join(f"{kv.key}: {value(kv.value)}" for kv in v.kvlist_value.values) + "}"
    return repr(getattr(v, which)) if which else "null"


def dump(path: str, out=sys.stdout) -> int:
    req = ExportTraceServiceRequest()
    with open(path, "rb") as f:
        req.ParseFromString(f.read())
    n = 0
    out.write(f"== {path.rsplit('/', 1)[-1]}\n")
    for rs in req.resource_spans:
        res = {kv.key: value(kv.value) for kv in rs.resource.attributes}
        out.write("RESOURCE " + ", ".join(f"{k}={v}" for k, v in sorted(res.items())
                                          if k in ("service.name", "gen_ai.agent.id")) + "\n")
        for ss in rs.scope_spans:
            for s in ss.spans:
                n += 1
                parent = s.parent_span_id.hex() if s.parent_span_id else ""
                out.write(f'* "{s.name}" kind={KINDS.get(s.kind, s.kind)} scope={ss.scope.name} '
                          f"trace={s.trace_id.hex()[:8]} span={s.span_id.hex()} parent={parent} "
                          f"status={STATUS.get(s.status.code, s.status.code)}\n")
                for kv in s.attributes:
                    out.write(f"    {kv.key} = {value(kv.value)}\n")
    return n


if __name__ == "__main__":
    total = sum(dump(p) for p in sys.argv[1:])
    print(f"{total} spans", file=sys.stderr)
