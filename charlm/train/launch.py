"""The trainer for a new run, or for one that goes on where it stopped: the checks before
anything is written, the corpus encoded as the run needs it, and what the run records about
where it came from. No UI here; the app and the CLI share it."""

from __future__ import annotations

from pathlib import Path

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.encoded import EncodedCorpus, encode_corpus, text_summary
from charlm.corpus.files import CorpusSource
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.runs.checkpoint_dir import read_meta
from charlm.runs.directory import LOCK, SOURCE, VOCAB, ResumeState, RunDir
from charlm.runs.training_text import training_corpus
from charlm.train.distributed import current_team
from charlm.train.finetune import Parent, carried_weights, grown_vocab
from charlm.train.reports import TrainCallbacks
from charlm.train.trainer import Trainer


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
    `parent` (charlm.train.finetune) it starts from the parent's weights and records where it started;
    `corpus` must then be encoded with the parent's vocabulary grown by the text's characters."""
    model_config.validate()
    train_config.validate()
    team = current_team()
    team.decide(lambda: _check_new_run_dir(run_dir))     # rank 0 looks, before any rank writes there
    init = None if parent is None else carried_weights(parent.checkpoint.model.state_dict(), parent.vocab, corpus.vocab)
    trainer = Trainer(corpus, model_config, train_config, run_dir, callbacks, init_weights=init)   # refuses a too-short text
    if team.writes:
        try:
            RunDir(run_dir).write_source(spec, encoding, parent.lineage() if parent else None,   # before anything is written
                                         paths=corpus.paths, sha256=corpus.sha256)
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
                   corpus: str | None = None, encoding: str = "utf-8") -> Trainer:
    """The trainer that continues `run_dir` exactly where it stopped, on the text it recorded
    (or at `corpus`, where the text is now: charlm.runs.training_text).

    `train_overrides` changes training settings (e.g. a larger budget)."""
    run = RunDir(run_dir)
    current_team().decide(lambda: run.check_idle("wait for it to finish before resuming it"))   # before rank 0 claims it
    model_cfg, train_cfg, _ = resume_state(run.path)
    train_cfg.sample_every = None       # samples between validations are the caller's (the app's), not the run's
    for key, value in (train_overrides or {}).items():
        setattr(train_cfg, key, value)
    train_cfg.validate()
    with current_team().rank0_first():            # one rank fetches and builds the encoded cache, the others read it
        corpus = training_corpus(run.path, CharVocab.load(run.resume_checkpoint() / VOCAB), corpus, encoding,
                                 how="CORPUS: charlm train CORPUS --resume RUN",
                                 sha256=read_meta(run.resume_checkpoint()).get("corpus", {}).get("sha256"))
    return Trainer(corpus, model_cfg, train_cfg, run_dir, callbacks, resume=True)
