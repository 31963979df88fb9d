"""metrics.jsonl: one JSON object a line, appended as training goes (a resumed run continues it)."""

from __future__ import annotations

import json
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
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
