"""Where runs and corpora live: `checkpoints/` and `corpora/` under the working directory,
or wherever CHARLM_CHECKPOINTS / CHARLM_CORPORA point."""

from __future__ import annotations

import errno
import json
import os
import threading
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


def cache_root() -> Path:
    """Where charlm keeps what it can rebuild: encoded corpora, speeds, references, logs."""
    return Path(os.environ.get("CHARLM_CACHE") or Path.home() / ".cache" / "charlm")


def read_json_dict(path: Path) -> dict:
    """A JSON object from `path`; {} when it is missing or not one (a cache is never trusted)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data) -> None:
    """Replace `path` with `data` as JSON in one rename: readers see the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def missing_path_problem(path: Path) -> str:
    """What to tell a person about a path that cannot be opened, rather than a bare "no such
    file": a symbolic link that loops or leads nowhere, or a folder they may not enter."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"{path} is a symbolic link that loops back on itself"
        if os.path.islink(path):
            return f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
        if e.errno == errno.EACCES:
            return f"cannot reach {path}: permission denied"
        return f"no such file or directory: {path}"
    return f"{path} is not a regular file or directory"
