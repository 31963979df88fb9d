"""Messages the workers post to the UI ("attributes down, messages up"). Workers never touch
widgets: they post one of these and the screen's handler updates what is shown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from charlm.corpus.encoded import EncodedCorpus
from charlm.corpus.files import CorpusSource
from charlm.corpus.yardsticks import Yardsticks
from charlm.generate.sampler import Token
from charlm.train.finetune import Parent
from charlm.train.reports import EvalReport, RollbackReport, SampleReport, StepReport


@dataclass
class TrainingStarted(Message):
    run_dir: Path
    step: int                 # 0, or where a resumed run goes on from
    params: int
    summary: str              # "lstm 2x256 · 842k params · cpu bf16"


@dataclass
class TrainingStep(Message):
    report: StepReport

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingStep)   # a newer report supersedes a queued one


@dataclass
class TrainingEval(Message):
    report: EvalReport


@dataclass
class TrainingSample(Message):
    report: SampleReport


@dataclass
class TrainingSaved(Message):
    path: Path


@dataclass
class TrainingEnded(Message):
    """The training worker ended: with its result, or with the error that stopped it."""
    result: object | None = None              # charlm.train.reports.TrainResult
    error: BaseException | None = None


@dataclass
class TrainingRolledBack(Message):
    report: RollbackReport


@dataclass
class CorpusPreparing(Message):
    spec: str
    done: int = 0             # bytes downloaded so far (catalog corpora, first use)
    total: int = 0

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CorpusPreparing)


@dataclass
class CorpusReady(Message):
    spec: str                 # as typed or picked
    record: str               # how the run will remember it (source.json)
    source: CorpusSource
    corpus: EncodedCorpus
    yardsticks: Yardsticks       # simple models of the text on its own split (seconds the first time, then kept)
    notice: str | None = None


@dataclass
class StartChosen(Message):
    """Where a new run starts: a loaded run to fine-tune, or None for random weights."""
    parent: Parent | None


@dataclass
class CorpusFailed(Message):
    spec: str
    error: str


@dataclass
class Generated(Message):
    """Characters the sampler produced since the last message (batched ~30 times a second)."""
    tokens: list[Token]
    generation: int           # which Generate press they belong to (stale ones are dropped)
    chars_per_sec: float = 0.0   # the model's own speed so far (time spent making characters)
    guesses: list[Token] | None = None   # the model's likeliest next characters after these
