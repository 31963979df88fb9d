"""The run in progress, as the app sees it, and the trainer callbacks that report to it.

The session lives on the App so every screen sees the same run: the Train screen drives it,
Generate snapshots its weights, Models knows not to delete it, and quitting asks about it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textual.message_pump import MessagePump

from charlm.config import ModelConfig, TrainConfig, more_budget
from charlm.corpus.encoded import EncodedCorpus
from charlm.corpus.files import CorpusSource
from charlm.corpus.yardsticks import Yardsticks, yardsticks_for
from charlm.machine.allocator import give_back_freed_memory
from charlm.paths import new_run_dir
from charlm.runs.directory import RunDir
from charlm.runs.listing import delete_run
from charlm.train.finetune import Parent
from charlm.train.launch import encode_for_run, new_trainer, resume_state, resume_trainer
from charlm.train.reports import (EvalReport, RollbackReport, SampleReport, StartReport, StepReport, TrainCallbacks,
                                  TrainResult)
from charlm.train.trainer import Trainer
from charlm.tui.messages import (CorpusReady, TrainingEval, TrainingRolledBack, TrainingSample, TrainingSaved,
                                 TrainingStarted, TrainingStep)


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
    parent: Parent | None = None             # new run: the run it starts from (charlm.train.finetune)
    source: CorpusSource | None = None       # new run from a parent: the text, read over its vocabulary


def new_plan(ready: CorpusReady, model_cfg: ModelConfig, train_cfg: TrainConfig,
             parent: Parent | None) -> tuple[TrainPlan, str]:
    """The plan for a new run on the prepared corpus (from `parent`'s weights, if given), and
    the note that says so; UsageError when the configs are not ones it can train."""
    corpus = ready.corpus
    model_cfg.vocab_size = len(corpus.vocab)
    model_cfg.validate()
    train_cfg.validate()
    plan = TrainPlan(new_run_dir(corpus.name), corpus, ready.record, ready.source.encoding, model_cfg, train_cfg,
                     parent=parent, source=ready.source)
    start = f" from {parent.name}" if parent else ""
    return plan, f"new run on {corpus.name}{start}: {model_cfg.cell} {model_cfg.layers}x{model_cfg.hidden}"


def resume_plan(run_dir: Path, budget: Callable[[], TrainConfig], sample_every: int) -> tuple[TrainPlan, str]:
    """The plan that resumes `run_dir`, and the note that says so. A finished run goes on for
    `budget()` more (the Train screen's budget: config.more_budget); samples between validations
    are the app's, whoever trained the run before. UsageError when it cannot be resumed."""
    RunDir(run_dir).check_idle("wait for it to finish before resuming it here")
    _, train_cfg, state = resume_state(run_dir)
    overrides, note = {"sample_every": sample_every}, f"resuming {run_dir.name} at step {state.step:,}"
    if train_cfg.budget_fraction(state.step, state.elapsed) >= 1.0:
        t = budget()
        more = more_budget(state.step, state.elapsed, t.steps, t.minutes)
        overrides |= more
        note += (f" (budget extended to {more['steps']:,} steps)" if more.get("steps")
                 else f" (budget extended to {more['minutes']:.1f} min)")
    return TrainPlan(run_dir, resume=True, train_overrides=overrides), note


class TrainingSession:
    """Events the trainer watches, the trainer once built, and the history the UI has seen."""

    IDLE, PREPARING, TRAINING, PAUSED, STOPPING = "idle", "preparing", "training", "paused", "stopping"

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.abandon = threading.Event()
        self.hurry = threading.Event()       # stop without the closing validation (SIGTERM)
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

    @property
    def stepping(self) -> bool:
        """Training or paused: a run that Pause and Stop act on."""
        return self.state in (self.TRAINING, self.PAUSED)

    def begin(self, run_dir: Path, history=None) -> None:
        self.stop.clear()
        self.pause.clear()
        self.abandon.clear()
        self.hurry.clear()
        self.finished.clear()
        self.state, self.run_dir, self.trainer = self.PREPARING, run_dir, None
        self.train_points, self.val_points = history or ([], [])
        self.last_step = self.last_eval = None
        self.yardsticks = None

    def request_stop(self, save: bool = True, hurry: bool = False) -> None:
        """Stop the run (it saves last/ unless `save` is False; validates first unless `hurry`)."""
        if not save:
            self.abandon.set()
        if hurry:
            self.hurry.set()
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

    # -- the history the UI has seen -----------------------------------------------------
    def saw_step(self, r: StepReport) -> None:
        self.last_step = r
        self.train_points.append((r.step, r.elapsed, r.train_loss))

    def saw_eval(self, r: EvalReport) -> None:
        self.last_eval = r
        self.val_points.append((r.step, r.elapsed, r.val_loss))

    def saw_rollback(self, r: RollbackReport) -> None:
        """The steps a rollback undid leave the history (and the chart)."""
        self.train_points = [p for p in self.train_points if p[0] <= r.step]
        self.val_points = [p for p in self.val_points if p[0] <= r.step]

    def total_steps(self) -> int | None:
        """The budget in steps, for a run counted in steps (None for one in minutes)."""
        cfg = self.trainer.cfg if self.trainer is not None else None
        return cfg.steps if cfg is not None and cfg.budget_seconds is None else None

    # -- the training thread ---------------------------------------------------------------
    def run(self, plan: TrainPlan, callbacks: PostingCallbacks) -> TrainResult:
        """Build the trainer `plan` asks for and train until the budget ends or a stop; on the
        worker thread. A new run abandoned before its first save leaves no empty directory."""
        if plan.resume:
            trainer = resume_trainer(plan.run_dir, callbacks, plan.train_overrides)
        else:
            # A run started from another reads its text over the parent's grown vocabulary.
            corpus = plan.corpus if plan.parent is None else encode_for_run(plan.source, plan.parent)
            trainer = new_trainer(corpus, plan.spec, plan.model_config, plan.train_config, plan.run_dir,
                                  callbacks, plan.encoding, parent=plan.parent)
        self.yardsticks = yardsticks_for(trainer.corpus, trainer.cfg.val_fraction)   # kept: instant after the first
        self.trainer = trainer
        try:
            return trainer.run(self.stop, self.pause, self.hurry)
        except Abandoned:
            if not plan.resume and not trainer.saved_step:     # None: left in a fine-tune's first validation
                delete_run(plan.run_dir)
            raise
        finally:
            callbacks.flush()
            give_back_freed_memory()        # the app stays open; the run's peak need not stay with it


class PostingCallbacks(TrainCallbacks):
    """Trainer callbacks that post messages to `target`: steps at most `hz` times a second
    (the newest replaces a queued one), every evaluation and checkpoint."""

    def __init__(self, target: MessagePump, session: TrainingSession, hz: float = 10.0):
        self.target, self.session, self.interval = target, session, 1.0 / hz
        self._last_post = 0.0
        self.latest: StepReport | None = None
        self._posted_latest = False

    def on_start(self, report: StartReport) -> None:
        self.target.post_message(TrainingStarted(report.run_dir, report.step, report.params, report.summary))

    def _leave_if_abandoned(self) -> None:
        """"Quit without saving" leaves at the next callback, before anything else is saved
        (an evaluation's callback comes before its checkpoint, a stop's before its save)."""
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

    def on_stopping(self, step: int, validating: bool) -> None:
        self._leave_if_abandoned()

    def on_rollback(self, report: RollbackReport) -> None:
        self.flush()
        self.target.post_message(TrainingRolledBack(report))
