#!/usr/bin/env python3
"""Record what each stack really sends: run.py against receiver.py, raw bodies kept.

    python3 capture.py --out DIR [--stack STACK ...]

For each stack (default: all five) writes ``DIR/<stack>/``: ``traces-NNNN.binpb``
(every OTLP/HTTP request body as received, in arrival order; both processes
export to the same receiver), ``run-stdout.txt`` (run.py's JSON summary) and
``SUMMARY.txt`` (dump.py: every span and attribute). Old ``*.binpb`` there are
removed first. Loopback only. Exits non-zero when a run fails.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STACKS = ("sdk", "sdk+capture", "fastmcp", "fastmcp+capture", "openllmetry")
TOKEN = "capture-token"
AGENT_ID = "scenario-agent-1"


def venv_python(stack: str) -> str:
    cache = os.environ.get("MCPWATCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mcpwatch")
    venv = {"sdk": "sdk", "fastmcp": "fastmcp"}.get(stack.split("+")[0], stack)
    return os.path.join(cache, f"venv-mcp-{venv}", "bin", "python")


def capture(stack: str, out: str) -> bool:
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "*.binpb")):
        os.remove(old)
    recv = subprocess.Popen([sys.executable, os.path.join(HERE, "receiver.py"), "--out", out, "--token", TOKEN,
                             "--stdin-stop"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(recv.stdout.readline())["port"]
        run = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--stack", stack,
                              "--endpoint", f"http://127.0.0.1:{port}", "--token", TOKEN, "--agent-id", AGENT_ID],
                             stdout=subprocess.PIPE, text=True, timeout=300)
    finally:
        recv.stdin.close()
        try:
            recv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            recv.kill()
            recv.wait()
    with open(os.path.join(out, "run-stdout.txt"), "w") as f:
        f.write(run.stdout)
    files = sorted(glob.glob(os.path.join(out, "*.binpb")))
    with open(os.path.join(out, "SUMMARY.txt"), "w") as f:
        subprocess.run([venv_python(stack), os.path.join(HERE, "dump.py"), *files], stdout=f, check=True)
    ok = run.returncode == 0 and json.loads(run.stdout or "{}").get("ok") is True
    print(f"capture.py: {stack}: run.py exit {run.returncode}, {len(files)} requests -> {out}", file=sys.stderr)
    return ok


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--stack", action="append", choices=STACKS)
    args = p.parse_args(argv)
    ok = True
    for stack in args.stack or STACKS:
        ok = capture(stack, os.path.join(args.out, stack)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
