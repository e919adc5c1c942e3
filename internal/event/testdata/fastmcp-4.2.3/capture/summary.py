"""Prints every span of the captured requests (SUMMARY.txt)."""
import sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
KINDS = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}
STATUS = {0: "Unset", 1: "Ok", 2: "Error"}
def val(v):
    k = v.WhichOneof("value")
    return getattr(v, k) if k else None
for path in sys.argv[1:]:
    req = ExportTraceServiceRequest.FromString(open(path, "rb").read())
    for rs in req.resource_spans:
        print("RESOURCE", {a.key: val(a.value) for a in rs.resource.attributes})
        for ss in rs.scope_spans:
            for s in ss.spans:
                print(f'* "{s.name}" kind={KINDS[s.kind]} scope={ss.scope.name}@{ss.scope.version} trace={s.trace_id.hex()[:8]} '
                      f'span={s.span_id.hex()} parent={s.parent_span_id.hex()} status={STATUS[s.status.code]} "{s.status.message[:80]}"')
                for a in s.attributes:
                    print(f"    {a.key} = {val(a.value)!r}"[:300])
                for e in s.events:
                    print(f"    EVENT {e.name} " + str({a.key: str(val(a.value))[:80] for a in e.attributes}))
