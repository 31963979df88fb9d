"""The run as it trains, on the Train screen's right: the loss chart, the live figures, the
progress bar and the samples. The trainer's reports arrive here as messages (posted by
charlm.tui.train_session.PostingCallbacks) and go on up to the screen, which keeps its buttons
and status in step."""

from __future__ import annotations

import math
import time

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar

from charlm.analysis.references import verdict
from charlm.train.reports import TrainResult
from charlm.tui import format as fmt
from charlm.tui.errors import describe_error
from charlm.tui.messages import (TrainingEnded, TrainingEval, TrainingRolledBack, TrainingSample, TrainingStarted,
                                 TrainingStep)
from charlm.tui.train_session import Abandoned, TrainingSession
from charlm.tui.widgets.loss_chart import LossChart
from charlm.tui.widgets.train_stats import SampleLog, TrainStats


class TrainLive(Vertical):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._last_chart = 0.0

    @property
    def session(self) -> TrainingSession:
        return self.app.session

    def compose(self) -> ComposeResult:
        yield LossChart(id="chart")
        yield TrainStats(id="stats")
        yield ProgressBar(id="progress", total=1.0, show_eta=False)
        yield SampleLog(id="samples")

    def on_mount(self) -> None:
        self.query_one(SampleLog).border_title = "Samples as it learns"
        self.query_one(TrainStats).show(None, None, None)
        self.query_one(LossChart).empty_hint = (
            "Press s (or ▶ Start) to train.\nThe loss is drawn here as it learns;\n"
            f"below, a sample every {self.app.options.sample_every} steps.\n"
            "Press 2 to play with it, even mid-training.")

    def note(self, text: str) -> None:
        self.query_one(SampleLog).add_note(text)

    def show_history(self) -> None:
        self.query_one(LossChart).show(self.session.train_points, self.session.val_points)

    def on_training_ended(self, event: TrainingEnded) -> None:
        """How the run ended: done or stopped (and saved), left without saving, or an error."""
        if event.result is not None:
            self.finished(event.result)
        elif isinstance(event.error, Abandoned):
            self.note("stopped without saving")
        elif event.error is not None:
            message = describe_error(event.error)
            self.note(f"training stopped: {message}")
            self.notify(message, title="Training stopped", severity="error", timeout=15)

    def finished(self, result: TrainResult) -> None:
        """What a person reads when the run is done: what the loss is worth, what was saved."""
        how = "stopped; saved" if result.stopped_early else "done; saved"
        saved = (f"{how} {result.run_dir.name} at step {result.steps:,} · best val {fmt.loss(result.best_val_loss)} "
                 f"nats/char ({fmt.bpc(result.best_val_loss)} bits/char)")
        if math.isfinite(result.best_val_loss):
            for line in verdict(result.best_val_loss, self._corpus_sha(), self.session.yardsticks):
                self.note(line)
        memorised = f"; {clause}" if (clause := result.memorised()) else ""
        self.note(f"{saved}{memorised} · press 2 to play with it")      # last: what was saved, what next
        self.notify(f"{saved}. Press 2 to generate text with it.", title="Checkpoint saved", timeout=8)

    # -- the trainer's reports -------------------------------------------------------------
    def on_training_started(self, event: TrainingStarted) -> None:
        self.note(f"{event.summary} · saving to {event.run_dir.name}")

    def on_training_step(self, event: TrainingStep) -> None:
        r, s = event.report, self.session
        s.saw_step(r)
        self.query_one(TrainStats).show(r, s.last_eval, s.total_steps(), self._corpus_sha(), s.yardsticks)
        self.query_one(ProgressBar).update(progress=r.progress)
        now = time.monotonic()
        if now - self._last_chart >= self.app.options.chart_interval:
            self._last_chart = now
            self.show_history()

    def on_training_eval(self, event: TrainingEval) -> None:
        r, s = event.report, self.session
        s.saw_eval(r)
        self.query_one(SampleLog).add_sample(r)
        self.show_history()
        self.query_one(TrainStats).show(s.last_step, r, s.total_steps(), self._corpus_sha(), s.yardsticks)

    def on_training_sample(self, event: TrainingSample) -> None:
        self.query_one(SampleLog).add_sample(event.report, self.session.last_eval)

    def on_training_rolled_back(self, event: TrainingRolledBack) -> None:
        self.session.saw_rollback(event.report)
        self.note(event.report.describe())
        self.show_history()
        self.notify(event.report.describe(), title="Rolled back", severity="warning", timeout=10)

    def _corpus_sha(self) -> str | None:
        return self.session.trainer.corpus.sha256 if self.session.trainer is not None else None
