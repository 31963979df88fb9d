"""Where runs and corpora live: `checkpoints/` and `corpora/` under the working directory,
or wherever CHARLM_CHECKPOINTS / CHARLM_CORPORA point."""

from __future__ import annotations

import os
import time
from pathlib import Path


def checkpoints_dir() -> Path:
    return Path(os.environ.get("CHARLM_CHECKPOINTS") or Path.cwd() / "checkpoints")


def corpora_dir() -> Path:
    return Path(os.environ.get("CHARLM_CORPORA") or Path.cwd() / "corpora")


def new_run_dir(corpus_name: str, root: Path | None = None) -> Path:
    """checkpoints/<corpus>-<yyyymmdd-hhmmss>/, with a suffix if that second is taken."""
    root = root or checkpoints_dir()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in corpus_name).strip("-.") or "corpus"
    base = root / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
