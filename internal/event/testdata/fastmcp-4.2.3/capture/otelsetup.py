"""Shared OTel setup: a SpanExporter that writes each export as an OTLP
ExportTraceServiceRequest (protobuf, exactly what OTLP/HTTP would POST)."""
import os, itertools
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

_counter = itertools.count()

class FileOTLPExporter(SpanExporter):
    def __init__(self, outdir, prefix):
        self.outdir, self.prefix = outdir, prefix
    def export(self, spans):
        data = encode_spans(spans).SerializeToString()
        path = os.path.join(self.outdir, f"{self.prefix}-{os.getpid()}-{next(_counter):04d}.pb")
        with open(path, "wb") as f:
            f.write(data)
        return SpanExportResult.SUCCESS
    def shutdown(self):
        pass

def setup(service):
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(FileOTLPExporter(os.environ["OUT"], service), schedule_delay_millis=60000, max_export_batch_size=512))
    trace.set_tracer_provider(provider)


    return provider
