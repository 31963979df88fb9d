"""Which directory is a charlm checkpoint: its config.json, checked to be ours (the envelope
charlm.model.checkpoint writes), and a CKPT argument (a checkpoint, a run directory, a run's
name) resolved to one. No torch: a mistyped CKPT is told before any model code loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from charlm.errors import UsageError
from charlm.paths import missing_path_problem, run_path
from charlm.runs.directory import BEST, CONFIG, VOCAB, WEIGHTS, RunDir

FORMAT = "charlm-checkpoint"
FORMAT_VERSION = 1
SECTIONS = ("model", "train", "corpus", "metrics")     # config.json's objects


def read_meta(path: Path) -> dict:
    """config.json of a checkpoint directory, checked to be ours."""
    cfg = path / CONFIG
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} has no config.json", "the checkpoint is incomplete; use another one") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"checkpoint {path} has a corrupt config.json ({e.__class__.__name__})",
                         "use another checkpoint, e.g. the run's last/ instead of best/") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UsageError(f"{path} is not a charlm checkpoint (config.json is from something else)",
                         "give a checkpoint written by `charlm train`")
    version = meta.get("format_version", 0)
    wrong = ["format_version"] if not isinstance(version, int) or isinstance(version, bool) else []
    wrong += [k for k in SECTIONS if not isinstance(meta.get(k, {}), dict)]
    if wrong:
        raise UsageError(f"checkpoint {path} has a corrupt config.json ({', '.join(wrong)}: not what charlm writes)",
                         "use another checkpoint, e.g. the run's last/ instead of best/")
    if version > FORMAT_VERSION:
        raise UsageError(f"{path} was written by a newer charlm (format {version})", "upgrade charlm")
    return meta


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from CKPT: itself, or a run directory's best/ (else last/); a run
    may be named by its name under checkpoints/ (charlm.paths.run_path)."""
    p = run_path(path)
    if not p.exists():
        what = missing_path_problem(p) if os.path.lexists(p) else f"no such checkpoint: {path}"
        raise UsageError(what, "give a run directory or its best/ or last/, or a run's name (`charlm info` lists them)")
    if p.is_file():
        p = p.parent if p.name in (WEIGHTS, CONFIG, VOCAB) else p
        if p.is_file():
            raise UsageError(f"{path} is a file, not a checkpoint directory",
                             "give the directory that holds model.safetensors")
    if (p / CONFIG).exists() or (p / WEIGHTS).exists():
        return p
    found = RunDir(p).checkpoint(BEST)
    if found is not None:
        return found
    raise UsageError(f"{path} is not a charlm checkpoint or run directory (no config.json inside)",
                     "give a run directory under checkpoints/, or run `charlm train` first")
