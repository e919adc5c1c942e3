#!/usr/bin/env python3
"""A tiny OTLP/HTTP trace receiver for captures and tests: loopback only.

    python receiver.py --out DIR [--port 0] [--token TOKEN] [--ready-file F]

Writes the raw body of every ``POST /v1/traces`` to ``DIR/traces-NNNN.binpb``
(exactly the bytes the exporter sent: an ExportTraceServiceRequest, protobuf;
a gzip-encoded body is stored decompressed) and answers 200 with an empty
ExportTraceServiceResponse. With ``--token`` a request without
``Authorization: Bearer TOKEN`` gets 401 and is not stored. Prints
``{"port": N}`` (and writes it to --ready-file) once listening; stops on
SIGTERM/SIGINT or when stdin closes if --stdin-stop is given. Standard library only.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(out: str, token: str, counter: itertools.count, lock: threading.Lock) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?")[0] != "/v1/traces":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if token and self.headers.get("Authorization") != f"Bearer {token}":
                self.send_error(401)
                return
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            with lock:
                n = next(counter)
                with open(os.path.join(out, f"traces-{n:04d}.binpb"), "wb") as f:
                    f.write(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write("receiver: " + fmt % args + "\n")

    return Handler


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default="")
    p.add_argument("--ready-file", default="")
    p.add_argument("--stdin-stop", action="store_true", help="stop when stdin reaches EOF")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.out, args.token, itertools.count(1), threading.Lock()))
    port = server.server_address[1]
    ready = json.dumps({"port": port})
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(ready + "\n")
        os.replace(args.ready_file + ".tmp", args.ready_file)
    print(ready, flush=True)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.stdin_stop:
        threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
