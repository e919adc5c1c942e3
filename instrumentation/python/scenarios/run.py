#!/usr/bin/env python3
"""Run the attack scenario with a real Python MCP stack and export its traces over OTLP/HTTP.

    python run.py --stack {sdk,sdk+capture,fastmcp,fastmcp+capture,openllmetry} \\
        --endpoint http://127.0.0.1:PORT --token TOKEN [--agent-id ID] [--no-agent-span]

Any python3 may start it: it re-executes itself with the stack's venv
(``${MCPWATCH_CACHE:-~/.cache/mcpwatch}/venv-mcp-{sdk,fastmcp,openllmetry}``, made by
scripts/install-instrumentation-python.sh).

Two processes, as in a real deployment: this one is the agent (the MCP
client, service.name ``mcpwatch-scenario-agent``), a child runs the four MCP
servers of stacks.py on 127.0.0.1 (service.name ``mcpwatch-scenario-mcp-servers``).
Each exports its spans to ``<endpoint>/v1/traces`` (OTLP/HTTP protobuf) with
``Authorization: Bearer TOKEN`` and flushes before exiting. ``+capture`` stacks
call ``mcpwatch_mcp_capture.instrument()`` in both processes; ``openllmetry``
instruments both with ``McpInstrumentor`` (content capture on).

The agent connects to every server, lists its tools, makes a few benign calls,
then the planted attacks (stacks.ATTACKS) and a loop of identical calls
(stacks.LOOP). By default the whole session runs
under one ``invoke_agent`` span (the agent application's span, as agent
frameworks create), so all its MCP spans share a trace; ``--no-agent-span``
leaves the SDK's spans as roots (one trace per request). The agent also puts a
conversation id (``--conversation-id``, default a new one; ``--no-conversation``
for none) in W3C baggage, which the SDK carries in ``_meta``; ``+capture``
stacks record it as ``gen_ai.conversation.id`` on both sides.

Prints one JSON summary on stdout (stack, versions, every call with its
JSON-RPC request id and trace id, span and export counts); everything else goes
to stderr. Exits 0 when every call was made and every export was accepted, 1
otherwise, 3 when the stack's venv is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
STACKS = ("sdk", "sdk+capture", "fastmcp", "fastmcp+capture", "openllmetry")
VENV_OF = {"sdk": "sdk", "sdk+capture": "sdk", "fastmcp": "fastmcp", "fastmcp+capture": "fastmcp",
           "openllmetry": "openllmetry"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", required=True, choices=STACKS)
    p.add_argument("--endpoint", required=True, help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
    p.add_argument("--token", default="", help="bearer token (Authorization header); empty: no header")
    p.add_argument("--agent-id", default="", help="gen_ai.agent.id (resource; + span attribute with capture); "
                   "also the agent's service.instance.id")
    p.add_argument("--no-agent-span", action="store_true", help="no invoke_agent parent span")
    p.add_argument("--conversation-id", default="", help="gen_ai.conversation.id put in W3C baggage "
                   "(default: a new id per run)")
    p.add_argument("--no-conversation", action="store_true", help="no conversation id in the baggage")
    p.add_argument("--timeout", type=float, default=120, help="seconds for the whole run")
    p.add_argument("--no-reexec", action="store_true", help="run with this interpreter even if it is not the stack's venv")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # internal: the server process
    return p.parse_args(argv)


def reexec_in_venv(args: argparse.Namespace) -> None:
    cache = os.environ.get("MCPWATCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mcpwatch")
    venv = os.path.join(cache, "venv-mcp-" + VENV_OF[args.stack])
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK):
        print(f"run.py: {venv} is missing; run scripts/install-instrumentation-python.sh", file=sys.stderr)
        sys.exit(3)
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


# --- OpenTelemetry -----------------------------------------------------------------------


def traces_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def setup_otel(args: argparse.Namespace, service: str, instance: str) -> tuple[Any, Any, Any]:
    """Global TracerProvider exporting to the endpoint; returns (provider, counting exporter, recorder)."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def __init__(self, inner: Any) -> None:
            self.inner, self.spans, self.requests, self.failures = inner, 0, 0, 0

        def export(self, spans: Any) -> Any:
            result = self.inner.export(spans)
            self.requests += 1
            if result == SpanExportResult.SUCCESS:
                self.spans += len(spans)
            else:
                self.failures += 1
            return result

        def shutdown(self) -> None:
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    class Recorder(SpanProcessor):
        """Keeps (attributes, trace id) of ended spans: request ids for the summary."""

        def __init__(self) -> None:
            self.ended: list[tuple[dict[str, Any], str, str]] = []

        def on_end(self, span: Any) -> None:
            self.ended.append((dict(span.attributes or {}), format(span.context.trace_id, "032x"), span.name))

    attrs = {"service.name": service, "service.instance.id": instance}
    if args.agent_id and not args.serve:
        attrs["gen_ai.agent.id"] = args.agent_id
    provider = TracerProvider(resource=Resource.create(attrs))
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    exporter = Counting(OTLPSpanExporter(endpoint=traces_url(args.endpoint), headers=headers, timeout=10))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    recorder = Recorder()
    provider.add_span_processor(recorder)
    trace.set_tracer_provider(provider)
    return provider, exporter, recorder


def instrument_stack(args: argparse.Namespace) -> None:
    if args.stack.endswith("+capture"):
        sys.path.insert(0, SRC)
        import mcpwatch_mcp_capture

        if not mcpwatch_mcp_capture.instrument(agent_id=None if args.serve else (args.agent_id or None)):
            raise SystemExit("run.py: mcpwatch_mcp_capture.instrument() refused this mcp release")
    elif args.stack == "openllmetry":
        os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")
        from opentelemetry.instrumentation.mcp import McpInstrumentor

        McpInstrumentor().instrument()


def quiet_logs() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("httpx", "mcp", "fastmcp", "uvicorn", "uvicorn.error", "uvicorn.access", "FastMCP"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": "%d.%d.%d" % sys.version_info[:3]}
    for dist in ("mcp", "fastmcp", "opentelemetry-instrumentation-mcp", "opentelemetry-sdk",
                 "opentelemetry-exporter-otlp-proto-http"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# --- the server process -------------------------------------------------------------------


def serve(args: argparse.Namespace, out: Any) -> int:
    import socket

    import anyio
    import uvicorn

    provider, exporter, _ = setup_otel(args, "mcpwatch-scenario-mcp-servers", str(uuid.uuid4()))
    instrument_stack(args)
    quiet_logs()
    import stacks

    apps = stacks.make_apps(args.stack)

    async def main() -> None:
        servers, sockets, ports = [], [], {}
        for name, app in apps.items():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports[name] = sock.getsockname()[1]
            servers.append(uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on")))
        async with anyio.create_task_group() as tg:
            for server, sock in zip(servers, sockets):
                tg.start_soon(server.serve, [sock])
            with anyio.fail_after(60):
                while not all(s.started for s in servers):
                    await anyio.sleep(0.02)
            out.write(json.dumps({"ports": ports}) + "\n")
            out.flush()
            await anyio.to_thread.run_sync(sys.stdin.read)  # the agent closes our stdin when done
            for server in servers:
                server.should_exit = True
        for sock in sockets:
            sock.close()

    anyio.run(main)
    provider.shutdown()
    out.write(json.dumps({"spans_exported": exporter.spans, "export_requests": exporter.requests,
                          "export_failures": exporter.failures}) + "\n")
    out.flush()
    return 0 if exporter.failures == 0 else 1


# --- the agent process ----------------------------------------------------------------------


def start_servers(args: argparse.Namespace) -> tuple[subprocess.Popen[str], dict[str, int]]:
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", "--no-reexec", "--stack", args.stack,
           "--endpoint", args.endpoint, "--token", args.token, "--timeout", str(args.timeout)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True)
    timer = threading.Timer(90, proc.kill)  # never wait forever for a server that does not come up
    timer.start()
    try:
        line = proc.stdout.readline() if proc.stdout else ""
    finally:
        timer.cancel()
    if not line:
        stop_servers(proc)
        raise RuntimeError(f"the server process did not start (exit code {proc.returncode})")
    return proc, json.loads(line)["ports"]


def stop_servers(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Close the servers' stdin (they shut down and flush), wait; kill only if they hang."""
    try:
        if proc.stdin:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=60)  # it writes one short line: no pipe deadlock
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    rest = proc.stdout.read() if proc.stdout else ""
    stats: dict[str, Any] = {"exit_code": proc.returncode}
    for line in (rest or "").splitlines():
        try:
            stats.update(json.loads(line))
        except ValueError:
            pass
    return stats


def agent(args: argparse.Namespace, out: Any) -> int:
    import anyio

    instance = args.agent_id or str(uuid.uuid4())
    provider, exporter, recorder = setup_otel(args, "mcpwatch-scenario-agent", instance)
    instrument_stack(args)
    quiet_logs()
    import stacks
    from opentelemetry import baggage, trace
    from opentelemetry import context as otel_context

    conversation = "" if args.no_conversation else (args.conversation_id or "conv-" + uuid.uuid4().hex)
    calls: list[dict[str, Any]] = []
    errors: list[str] = []
    proc, ports = start_servers(args)
    server_stats: dict[str, Any] = {}
    try:

        async def step(conns: dict[str, Any], kind: str, server: str, method: str, tool: str | None,
                       arguments: dict[str, Any] | None) -> None:
            before = len(recorder.ended)
            entry: dict[str, Any] = {"step": kind, "server": server, "method": method}
            if tool is not None:
                entry["tool"] = tool
                entry["arguments"] = arguments
            try:
                if method == "tools/list":
                    await conns[server].list_tools()
                    entry["outcome"] = "ok"
                else:
                    entry["outcome"] = await conns[server].call_tool(tool, arguments)
            except Exception as e:  # a failed call is reported, the run goes on
                entry["outcome"] = "error"
                entry["error"] = f"{type(e).__name__}: {e}"
                errors.append(f"{kind} {server}/{tool}: {entry['error']}")
            for attrs, trace_id, _ in recorder.ended[before:]:
                rid = attrs.get("jsonrpc.request.id") or attrs.get("mcp.request.id")
                if rid is not None and attrs.get("mcp.method.name", method) == method:
                    entry["request_id"] = str(rid)
                    entry["trace_id"] = trace_id
                    break
            calls.append(entry)

        async def session() -> None:
            async with contextlib.AsyncExitStack() as stack:
                conns = {}
                for name, port in ports.items():
                    before = len(recorder.ended)
                    conns[name] = await stack.enter_async_context(
                        stacks.connect(args.stack, f"http://127.0.0.1:{port}/mcp"))
                    calls.append({"step": "connect", "server": name,
                                  "spans": [span_name for _, _, span_name in recorder.ended[before:]]})
                for name in ports:
                    await step(conns, "discovery", name, "tools/list", None, None)
                for kind, server, tool, arguments in stacks.BENIGN + stacks.ATTACKS + stacks.LOOP:
                    await step(conns, kind, server, "tools/call", tool, arguments)

        async def main() -> None:
            token = None
            if conversation:
                # The agent's conversation id travels as W3C baggage (the SDK
                # injects it into `_meta`); only stacks that copy baggage to
                # spans (+capture) record it.
                token = otel_context.attach(baggage.set_baggage("gen_ai.conversation.id", conversation))
            try:
                with anyio.fail_after(args.timeout):
                    if args.no_agent_span:
                        await session()
                        return
                    tracer = trace.get_tracer("mcpwatch-scenario")
                    span_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": stacks.AGENT_NAME}
                    if args.agent_id:
                        span_attrs["gen_ai.agent.id"] = args.agent_id
                    if conversation:
                        span_attrs["gen_ai.conversation.id"] = conversation
                    with tracer.start_as_current_span(f"invoke_agent {stacks.AGENT_NAME}", attributes=span_attrs):
                        await session()
            finally:
                if token is not None:
                    otel_context.detach(token)

        anyio.run(main)
    except BaseException as e:  # report, still stop the servers and flush
        errors.append(f"run: {type(e).__name__}: {e}")
    finally:
        server_stats = stop_servers(proc)
        provider.shutdown()

    agent_span_trace = next((t for a, t, _ in recorder.ended if a.get("gen_ai.operation.name") == "invoke_agent"), None)
    ok = (not errors and exporter.failures == 0 and server_stats.get("exit_code") == 0
          and server_stats.get("export_failures", 1) == 0)
    summary = {
        "stack": args.stack,
        "ok": ok,
        "versions": versions(),
        "capture": args.stack.endswith("+capture"),
        "agent": {"service.name": "mcpwatch-scenario-agent", "service.instance.id": instance,
                  "gen_ai.agent.id": args.agent_id or None, "agent_span_trace_id": agent_span_trace,
                  "gen_ai.conversation.id": conversation or None},
        "servers": {name: {"port": port, "version": stacks.SERVERS[name][0]} for name, port in ports.items()},
        "calls": calls,
        "client": {"spans_exported": exporter.spans, "export_requests": exporter.requests,
                   "export_failures": exporter.failures},
        "server": server_stats,
        "errors": errors,
    }
    out.write(json.dumps(summary, indent=2) + "\n")
    out.flush()
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.no_reexec:
        reexec_in_venv(args)
    sys.path.insert(0, HERE)
    # stdout carries only our JSON; libraries that print go to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr
    started = time.monotonic()
    try:
        return serve(args, out) if args.serve else agent(args, out)
    finally:
        print(f"run.py: {'server' if args.serve else 'agent'} {args.stack} done in {time.monotonic() - started:.1f}s",
              file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
