"""Runs under checkpoints/: list them, read their loss history, and build the trainer for a new
or resumed run. No UI here; the app and the CLI share it. What a run directory holds, and how
it is read, written, renamed and deleted, is charlm.rundir's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from charlm.checkpoint import read_meta
from charlm.config import ModelConfig, TrainConfig
from charlm.corpus import CorpusSource
from charlm.data import EncodedCorpus, encode_corpus, text_summary
from charlm.distributed import current_team
from charlm.errors import UsageError
from charlm.finetune import Parent, carried_weights, grown_vocab
from charlm.metrics import read_metrics
from charlm.paths import checkpoints_dir
from charlm.reports import TrainCallbacks
from charlm.rundir import LAST, LOCK, SOURCE, ResumeState, RunDir
from charlm.train import Trainer
from charlm.vocab import CharVocab


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
        return None if self.best_val_loss is None else self.best_val_loss / math.log(2)

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


@dataclass(frozen=True)
class StartingPoint:
    """A run on this machine that a new run on a small text could start from (--init)."""
    run: RunInfo
    coverage: float         # share of the text's characters the run's vocabulary has
    gain: float             # predicted nats/char over starting from nothing (finetune.predicted_gain)

    def describe(self) -> str:
        r = self.run
        return (f"this text is small; {r.name} ({r.shape}, trained on {r.corpus}, {r.corpus_chars or 0:,} chars) knows "
                f"{self.coverage:.1%} of its characters, and starting from it is predicted to end ~{self.gain:.2f} "
                "nats/char better in this budget than starting from nothing")


MIN_COVERAGE = 0.95         # of the text's characters (counted with repeats) the parent must know
MIN_GAIN = 0.03             # nats/char: below this the tip is not worth a line
PARENT_TEXT_RATIO = 2       # a parent read at least this many times more text than the new one has


def suggest_start(corpus: EncodedCorpus, train_chars: int, root: Path | None = None) -> StartingPoint | None:
    """The best run under `root` to start a run on `corpus` from, when the text is small enough
    for that to pay and a run covers its characters; None otherwise (most texts)."""
    import numpy as np

    from charlm.finetune import predicted_gain
    gain = predicted_gain(train_chars)
    if gain < MIN_GAIN:
        return None
    counts = np.bincount(np.asarray(corpus.ids[:train_chars]), minlength=len(corpus.vocab))
    best = None
    for run in list_runs(root):
        if (run.problem or not run.corpus_chars or run.corpus_sha256 == corpus.sha256
                or run.corpus_chars < PARENT_TEXT_RATIO * train_chars):
            continue
        known = _vocab_chars(run.path)
        coverage = sum(int(n) for c, n in zip(corpus.vocab.itos, counts) if c in known) / max(int(counts.sum()), 1)
        if coverage >= MIN_COVERAGE and (best is None or (run.corpus_chars, run.steps or 0) >
                                         (best.run.corpus_chars, best.run.steps or 0)):
            best = StartingPoint(run, coverage, gain)
    return best


BASE_SET, BASE_MINUTES = "english", 30      # the catalog set and budget the README makes a base with


def base_would_help(train_chars: int, english: bool) -> float | None:
    """For a small English text (`english`: its Yardsticks.english_like): the gain a base model
    of English would bring (finetune.predicted_gain), to say how to make one when no run to
    start from is at hand; else None."""
    from charlm.finetune import predicted_gain
    gain = predicted_gain(train_chars)
    return gain if english and gain >= MIN_GAIN else None


def _vocab_chars(run_dir: Path) -> set[str]:
    """The characters of a run's vocabulary (none for a run without a readable one)."""
    ckpt = RunDir(run_dir).checkpoint()
    try:
        return set(CharVocab.load(ckpt / "tokenizer.json").chars) if ckpt else set()
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


def encode_for_run(source: CorpusSource, parent: Parent | None = None) -> EncodedCorpus:
    """A new run's corpus as ids: over its own characters, or, for a run started from `parent`,
    over the parent's characters grown by the text's."""
    if parent is None:
        return encode_corpus(source)
    return encode_corpus(source, grown_vocab(parent.vocab, text_summary(source).chars))


def new_trainer(corpus: EncodedCorpus, spec: str, model_config: ModelConfig, train_config: TrainConfig,
                run_dir: Path, callbacks: TrainCallbacks | None = None, encoding: str = "utf-8",
                parent: Parent | None = None) -> Trainer:
    """A fresh run in `run_dir` (created; must be empty, or hold only the corpus record of a run
    that was stopped before its first checkpoint) that remembers its corpus as `spec`. With a
    `parent` (charlm.finetune) it starts from the parent's weights and records where it started;
    `corpus` must then be encoded with the parent's vocabulary grown by the text's characters."""
    model_config.validate()
    train_config.validate()
    team = current_team()
    team.decide(lambda: _check_new_run_dir(run_dir))     # rank 0 looks, before any rank writes there
    init = None if parent is None else carried_weights(parent.checkpoint.model.state_dict(), parent.vocab, corpus.vocab)
    trainer = Trainer(corpus, model_config, train_config, run_dir, callbacks, init_weights=init)   # refuses a too-short text
    if team.writes:
        try:
            RunDir(run_dir).write_source(spec, encoding, parent.lineage() if parent else None)   # before anything is written
        except OSError as e:
            raise UsageError(f"cannot create the run directory {run_dir} ({e.strerror})",
                             "choose another place with --out, or fix its permissions") from None
    return trainer


def _check_new_run_dir(run_dir: Path) -> None:
    if run_dir.is_dir():
        RunDir(run_dir).check_idle("wait for it to finish or choose another --out")
    if run_dir.exists() and (not run_dir.is_dir() or any(p.name not in (SOURCE, LOCK) for p in run_dir.iterdir())):
        raise UsageError(f"{run_dir} already exists and is not empty", "choose another run directory (--out), or resume it")


def resume_state(run_dir: Path) -> tuple[ModelConfig, TrainConfig, ResumeState]:
    """The model and training config of a run, and where it stopped."""
    run = RunDir(run_dir)
    state = run.read_resume()
    meta = read_meta(run.resume_checkpoint())
    return ModelConfig.from_dict(meta.get("model", {})), TrainConfig.from_dict(meta.get("train", {})), state


def resume_trainer(run_dir: Path, callbacks: TrainCallbacks | None = None, train_overrides: dict | None = None,
                   resolve=None) -> Trainer:
    """The trainer that continues `run_dir` exactly where it stopped, on the corpus it recorded.

    `train_overrides` changes training settings (e.g. a larger budget); `resolve(spec, encoding)`
    finds the corpus (default: charlm.corpora.resolve_corpus, which knows catalog names).
    """
    run = RunDir(run_dir)
    current_team().decide(lambda: run.check_idle("wait for it to finish before resuming it"))   # before rank 0 claims it
    model_cfg, train_cfg, _ = resume_state(run.path)
    train_cfg.sample_every = None       # samples between validations are the caller's (the app's), not the run's
    for key, value in (train_overrides or {}).items():
        setattr(train_cfg, key, value)
    train_cfg.validate()
    source = run.read_source()
    if resolve is None:
        from charlm.corpora import resolve_corpus as resolve
        if source is None:
            raise UsageError(f"{run.path} does not record its corpus (no readable source.json)",
                             "resume it from the command line: charlm train CORPUS --resume RUN_DIR")
    with current_team().rank0_first():            # one rank builds the encoded cache, the others read it
        corpus = encode_corpus(resolve(*(source or ("", "utf-8"))), CharVocab.load(run.resume_checkpoint() / "tokenizer.json"))
    return Trainer(corpus, model_cfg, train_cfg, run_dir, callbacks, resume=True)
