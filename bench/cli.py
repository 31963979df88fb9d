"""The real `charlm` command, as the benchmarks run it: a subprocess of this Python, from the
project root, one line per message (wide COLUMNS, so the lines parse)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def charlm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `charlm ARGS`; a failure raises (CalledProcessError) with its output."""
    return subprocess.run([sys.executable, "-m", "charlm", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "250", **(env or {})}, check=True)
