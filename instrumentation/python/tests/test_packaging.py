"""The package builds as a wheel with the declared name, import package and entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_wheel(tmp_path):
    pytest.importorskip("hatchling")  # only venv-mcp-sdk has the build backend
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("mcpwatch_mcp_capture-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "mcpwatch_mcp_capture/__init__.py" in names
    assert "mcpwatch_mcp_capture/_capture.py" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert "Name: mcpwatch-mcp-capture" in meta
    assert "Requires-Dist: mcp<2.4,>=2.3.0" in meta
    assert "mcpwatch_mcp_capture = mcpwatch_mcp_capture.instrumentor:McpCaptureInstrumentor" in entry
