"""metrics.jsonl: one JSON object a line, appended as training goes (a resumed run continues it)."""

from __future__ import annotations

import json
import os
from pathlib import Path


class MetricsLog:
    def __init__(self, path: Path):
        self.path = path

    def write(self, **fields) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields) + "\n")


def read_metrics(path: Path) -> list[dict]:
    """Every well-formed line; a line cut off by a crash is skipped, not fatal."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return _rows(text.splitlines())


def _rows(lines: list[str]) -> list[dict]:
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def truncate_after(path: Path, step: int) -> None:
    """Keep the rows up to `step` (and those without one); drop the rest and any line a crash
    cut off, which the next row would otherwise be appended to. One rename: a crash meanwhile
    leaves the old file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    lines = text.splitlines()
    rows = _rows(lines)
    kept = [r for r in rows if not (isinstance(r.get("step"), int) and r["step"] > step)]
    if len(kept) == len(lines) and (not text or text.endswith("\n")):
        return                      # nothing to drop: leave the file alone
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
