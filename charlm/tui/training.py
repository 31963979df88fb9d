"""The run in progress, as the app sees it, and the trainer callbacks that report to it.

The session lives on the App so every screen sees the same run: the Train screen drives it,
Generate snapshots its weights, Models knows not to delete it, and quitting asks about it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from textual.message_pump import MessagePump

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus import CorpusSource
from charlm.data import EncodedCorpus
from charlm.finetune import Parent
from charlm.reports import EvalReport, RollbackReport, SampleReport, StepReport, TrainCallbacks
from charlm.train import Trainer
from charlm.yardsticks import Yardsticks
from charlm.tui.messages import (TrainingEval, TrainingRolledBack, TrainingSample, TrainingSaved, TrainingStarted,
                                 TrainingStep)


class Abandoned(Exception):
    """Raised inside the training thread to leave without saving (quit, "don't save")."""


@dataclass
class TrainPlan:
    """What Start (or Resume) asks for: a new run on a prepared corpus, or a run directory."""
    run_dir: Path
    corpus: EncodedCorpus | None = None      # new run
    spec: str = ""                           # how the new run records its corpus
    encoding: str = "utf-8"
    model_config: ModelConfig | None = None
    train_config: TrainConfig | None = None
    resume: bool = False
    train_overrides: dict = field(default_factory=dict)   # resume: e.g. a larger budget
    parent: Parent | None = None             # new run: the run it starts from (charlm.finetune)
    source: CorpusSource | None = None       # new run from a parent: the text, read over its vocabulary


class TrainingSession:
    """Events the trainer watches, the trainer once built, and the history the UI has seen."""

    IDLE, PREPARING, TRAINING, PAUSED, STOPPING = "idle", "preparing", "training", "paused", "stopping"

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.abandon = threading.Event()
        self.finished = threading.Event()    # no training thread running (set when it returns)
        self.finished.set()
        self.state = self.IDLE
        self.trainer: Trainer | None = None
        self.run_dir: Path | None = None
        self.train_points: list[tuple[int, float, float]] = []   # (step, elapsed, smoothed loss)
        self.val_points: list[tuple[int, float, float]] = []     # (step, elapsed, val loss)
        self.last_step: StepReport | None = None
        self.last_eval: EvalReport | None = None
        self.yardsticks: Yardsticks | None = None                # of the text being trained on

    @property
    def active(self) -> bool:
        """A worker is running (preparing, training, paused or finishing)."""
        return self.state != self.IDLE

    def begin(self, run_dir: Path, history=None) -> None:
        self.stop.clear()
        self.pause.clear()
        self.abandon.clear()
        self.finished.clear()
        self.state, self.run_dir, self.trainer = self.PREPARING, run_dir, None
        self.train_points, self.val_points = history or ([], [])
        self.last_step = self.last_eval = None
        self.yardsticks = None

    def request_stop(self, save: bool = True) -> None:
        if not save:
            self.abandon.set()
        self.stop.set()
        self.pause.clear()
        if self.active:
            self.state = self.STOPPING

    def toggle_pause(self) -> bool:
        """Pause or resume; True when now paused."""
        if self.state == self.TRAINING:
            self.pause.set()
            self.state = self.PAUSED
        elif self.state == self.PAUSED:
            self.pause.clear()
            self.state = self.TRAINING
        return self.state == self.PAUSED

    def step_label(self) -> str:
        return f"step {self.last_step.step}" if self.last_step else "starting"


class PostingCallbacks(TrainCallbacks):
    """Trainer callbacks that post messages to `target`: steps at most `hz` times a second
    (the newest replaces a queued one), every evaluation and checkpoint."""

    def __init__(self, target: MessagePump, session: TrainingSession, hz: float = 10.0):
        self.target, self.session, self.interval = target, session, 1.0 / hz
        self._last_post = 0.0
        self.latest: StepReport | None = None
        self._posted_latest = False

    def on_start(self, trainer: Trainer) -> None:
        m = trainer.model.config
        summary = (f"{m.cell} {m.layers}x{m.hidden} · {trainer.model.num_params():,} params · "
                   f"{trainer.device.type} {trainer.precision} · {trainer.threads.choice.reason}")
        self.target.post_message(TrainingStarted(trainer.run_dir, trainer.step, trainer.model.num_params(), summary))

    def _leave_if_abandoned(self) -> None:
        """"Quit without saving" leaves at the next callback, before anything else is saved
        (an evaluation's callback comes before its checkpoint)."""
        if self.session.abandon.is_set():
            raise Abandoned()

    def on_step(self, report: StepReport) -> None:
        self._leave_if_abandoned()
        self.latest, self._posted_latest = report, False
        now = time.monotonic()
        if now - self._last_post >= self.interval:
            self._last_post, self._posted_latest = now, True
            self.target.post_message(TrainingStep(report))

    def flush(self) -> None:
        """Post the last step if the throttle held it back (the run ended between posts)."""
        if self.latest is not None and not self._posted_latest:
            self._posted_latest = True
            self.target.post_message(TrainingStep(self.latest))

    def on_eval(self, report: EvalReport) -> None:
        self._leave_if_abandoned()
        self.flush()
        self.target.post_message(TrainingEval(report))

    def on_sample(self, report: SampleReport) -> None:
        self.flush()
        self.target.post_message(TrainingSample(report))

    def on_checkpoint(self, path: Path) -> None:
        self.target.post_message(TrainingSaved(path))

    def on_rollback(self, report: RollbackReport) -> None:
        self.flush()
        self.target.post_message(TrainingRolledBack(report))
