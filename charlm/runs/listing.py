"""Runs under checkpoints/: list them (without torch: the Models screen opens at once), read
their loss history, rename and delete them. What a run directory holds, and how it is read,
written, renamed and deleted, is charlm.runs.directory's; building the trainer for a new or
resumed run is charlm.train.launch's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charlm.config import TrainConfig
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.paths import checkpoints_dir
from charlm.runs.checkpoint_dir import read_meta
from charlm.runs.directory import LAST, VOCAB, RunDir
from charlm.runs.metrics import read_metrics
from charlm.units import bits


@dataclass(frozen=True)
class RunInfo:
    """One row of the run list: what a person needs to recognise a run."""
    path: Path
    corpus: str | None = None
    cell: str | None = None
    layers: int | None = None
    hidden: int | None = None
    params: int | None = None
    steps: int | None = None
    elapsed: float | None = None        # seconds of training
    best_val_loss: float | None = None  # nats/char
    saved_at: str | None = None         # ISO 8601, from the checkpoint
    resumable: bool = False             # last/ holds optimizer state
    progress: float | None = None       # 0..1 of its budget
    problem: str | None = None          # why it cannot be read, when it cannot
    corpus_chars: int | None = None
    corpus_sha256: str | None = None
    init: dict | None = None            # where it started, for a run started from another (finetune.Parent.lineage)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best_val_bpc(self) -> float | None:
        return None if self.best_val_loss is None else bits(self.best_val_loss)

    @property
    def shape(self) -> str:
        return f"{self.cell} {self.layers}x{self.hidden}" if self.cell else "?"


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run under `root` (checkpoints/ by default), newest first; unreadable ones included
    with their problem, so a corrupt checkpoint is shown rather than fatal."""
    root = root or checkpoints_dir()
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir() if not p.name.startswith(".") and RunDir(p).is_run()]
    return sorted(runs, key=lambda r: (r.saved_at or "", r.name), reverse=True)


def run_info(run_dir: Path) -> RunInfo:
    run = RunDir(run_dir)
    ckpt = run.checkpoint(LAST)           # the newest figures
    if ckpt is None:
        return RunInfo(run_dir, problem="no checkpoint inside")
    try:
        meta = read_meta(ckpt)
    except UsageError as e:
        return RunInfo(run_dir, problem=e.problem)
    model, metrics, corpus = meta.get("model", {}), meta.get("metrics", {}), meta.get("corpus", {})
    train = TrainConfig.from_dict(meta.get("train", {}))
    step, elapsed = metrics.get("step"), metrics.get("elapsed")
    return RunInfo(run_dir, corpus=corpus.get("name"), cell=model.get("cell"),
                   layers=model.get("layers"), hidden=model.get("hidden"), params=meta.get("params"),
                   steps=step, elapsed=elapsed, best_val_loss=metrics.get("best_val_loss"),
                   saved_at=meta.get("saved_at"), resumable=run.resumable() is not None,
                   progress=train.budget_fraction(step or 0, elapsed or 0.0), corpus_chars=corpus.get("chars"),
                   corpus_sha256=corpus.get("sha256"), init=run.read_lineage())


def vocab_chars(run_dir: Path) -> set[str]:
    """The characters of a run's vocabulary (none for a run without a readable one)."""
    ckpt = RunDir(run_dir).checkpoint()
    try:
        return set(CharVocab.load(ckpt / VOCAB).chars) if ckpt else set()
    except (UsageError, OSError):
        return set()


def loss_history(run_dir: Path) -> tuple[list[tuple[int, float, float]], list[tuple[int, float, float]]]:
    """(train, val) points as (step, elapsed seconds, nats/char) from metrics.jsonl."""
    train, val = [], []
    for row in read_metrics(RunDir(run_dir).metrics_path):
        step, elapsed = row.get("step"), row.get("elapsed")
        if not isinstance(step, int) or not isinstance(elapsed, (int, float)):
            continue
        if isinstance(row.get("val_loss"), (int, float)):
            val.append((step, float(elapsed), float(row["val_loss"])))
        elif isinstance(row.get("train_loss"), (int, float)):
            train.append((step, float(elapsed), float(row["train_loss"])))
    return train, val


def rename_run(run_dir: Path, new_name: str) -> Path:
    return RunDir(run_dir).rename(new_name).path


def delete_run(run_dir: Path) -> None:
    RunDir(run_dir).delete()
