"""The Train screen, what opens first: pick a corpus and a model, press Start, and watch the
loss fall and the samples turn from noise into words into verse."""

from __future__ import annotations

import math
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, ProgressBar, Select, Static
from textual.worker import Worker, WorkerState

from charlm import speed
from charlm.data import EncodedCorpus
from charlm.errors import UsageError
from charlm.paths import new_run_dir
from charlm.references import verdict
from charlm.yardsticks import yardsticks_for
from charlm.reports import TrainResult
from charlm.rundir import RunDir
from charlm.runs import delete_run, encode_for_run, loss_history, new_trainer, resume_state, resume_trainer
from charlm.tui import format as fmt
from charlm.tui.errors import describe_error
from charlm.tui.messages import (CorpusFailed, CorpusReady, StartChosen, TrainingEval,
                                 TrainingRolledBack, TrainingSample, TrainingSaved, TrainingStarted, TrainingStep)
from charlm.tui.training import Abandoned, PostingCallbacks, TrainingSession, TrainPlan
from charlm.tui.widgets.corpus_picker import CorpusPicker
from charlm.tui.widgets.loss_chart import LossChart
from charlm.tui.widgets.model_picker import ModelPicker
from charlm.tui.widgets.nav import NavBar
from charlm.tui.widgets.start_from import StartFrom
from charlm.tui.widgets.train_stats import SampleLog, TrainStats


class TrainScreen(Screen):
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="start: train with the corpus and model on the left"),
        Binding("p,space", "pause", "Pause/Resume", tooltip="pause / resume the run in progress"),
        Binding("x", "stop", "Stop & save", tooltip="stop and save: the checkpoint is kept"),
        Binding("c", "chart_axis", "Steps/min", tooltip="chart against steps / minutes: the loss chart's x axis"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.corpus: CorpusReady | None = None
        self.start_run = None                  # the run a new run starts from (charlm.finetune.Parent), if any
        self._last_chart = 0.0

    @property
    def session(self) -> TrainingSession:
        return self.app.session

    def compose(self) -> ComposeResult:
        opts = self.app.options
        yield NavBar("train")
        with Horizontal(id="train-body"):
            with VerticalScroll(id="setup"):
                yield CorpusPicker(opts.corpus, opts.train.get("val_fraction", 0.1), id="corpus-picker")
                yield StartFrom(id="start-picker")
                yield ModelPicker(opts.preset, opts.model, opts.train, opts.budget, opts.budget_unit, id="model-picker")
            with Vertical(id="live"):
                with Horizontal(id="train-controls"):
                    yield Button("▶ Start", id="start", variant="success", compact=True)
                    yield Button("‖ Pause", id="pause", compact=True, disabled=True)
                    yield Button("■ Stop", id="stop", variant="error", compact=True, disabled=True)
                    yield Static("choose a corpus and a model, then Start", id="train-status")
                yield LossChart(id="chart")
                yield TrainStats(id="stats")
                yield ProgressBar(id="progress", total=1.0, show_eta=False)
                yield SampleLog(id="samples")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#samples", SampleLog).border_title = "Samples as it learns"
        self.query_one("#stats", TrainStats).show(None, None, None)
        self.query_one(LossChart).empty_hint = (
            "Press s (or ▶ Start) to train.\nThe loss is drawn here as it learns;\n"
            f"below, a sample every {self.app.options.sample_every} steps.\n"
            "Press 2 to play with it, even mid-training.")
        self.query_one("#start", Button).focus()

    def on_screen_resume(self) -> None:
        """Back on this screen: runs may have been made, renamed or deleted meanwhile."""
        if not self.session.active:
            self.query_one(StartFrom).refresh_runs()

    # -- corpus and speed estimates ------------------------------------------------------
    def on_corpus_ready(self, event: CorpusReady) -> None:
        self.corpus = event
        corpus = event.corpus
        val_fraction = self.query_one(ModelPicker).initial[2].get("val_fraction", 0.1)
        train_chars = len(corpus.split(val_fraction)[0])
        self.query_one(ModelPicker).set_corpus(train_chars, len(corpus.vocab), event.yardsticks.difficulty())
        self.query_one(StartFrom).corpus_changed(corpus, train_chars, event.yardsticks.english_like)
        self._status()

    def on_start_chosen(self, event: StartChosen) -> None:
        """A run to start from (or none): its shape fixes the model."""
        self.start_run = event.parent
        self.query_one(ModelPicker).set_parent(event.parent.config if event.parent else None)

    def on_corpus_failed(self, event: CorpusFailed) -> None:
        self.corpus = None
        self._status()

    # -- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        state = self.session.state
        if action == "start":
            return state == TrainingSession.IDLE
        if action in ("pause", "stop"):
            return state in (TrainingSession.TRAINING, TrainingSession.PAUSED)
        return True

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        """Start a new run with the chosen corpus and model."""
        if self.session.active:
            self.notify("a run is already in progress", severity="warning")
            return
        picker = self.query_one(CorpusPicker)
        if self.corpus is None or self.corpus.spec != picker.spec:
            self.notify("the corpus is not ready yet: wait for its size to show, or pick another",
                        severity="warning")
            return
        if self.query_one(StartFrom).loading is not None:
            self.notify("the run to start from is still loading: a moment", severity="warning")
            return
        try:
            model_cfg, train_cfg = self.query_one(ModelPicker).configs()
            model_cfg.vocab_size = len(self.corpus.corpus.vocab)
            model_cfg.validate()
            train_cfg.validate()
        except UsageError as e:
            self.notify(e.message, title="Can't start", severity="error")
            return
        corpus: EncodedCorpus = self.corpus.corpus
        plan = TrainPlan(new_run_dir(corpus.name), corpus, self.corpus.record, self.corpus.source.encoding,
                         model_cfg, train_cfg, parent=self.start_run, source=self.corpus.source)
        start = f" from {self.start_run.name}" if self.start_run else ""
        self._launch(plan, ([], []),
                     f"new run on {corpus.name}{start}: {model_cfg.cell} {model_cfg.layers}x{model_cfg.hidden}")

    def resume_run(self, run_dir: Path) -> None:
        """Continue a saved run (from the Models screen), its chart continuing too."""
        if self.session.active:
            self.notify("a run is in progress here: stop it before resuming another", severity="warning")
            return
        try:
            RunDir(run_dir).check_idle("wait for it to finish before resuming it here")
            _, train_cfg, state = resume_state(run_dir)
        except UsageError as e:
            self.notify(e.message, title="Can't resume", severity="error")
            return
        extension: dict = {}
        step = state.step
        if train_cfg.budget_fraction(step, state.elapsed) >= 1.0:
            extension = self._extension(step, state.elapsed)
            if extension is None:
                return
        # Samples between validations are the app's, whoever trained the run before.
        overrides = {**extension, "sample_every": self.app.options.sample_every}
        self._launch(TrainPlan(run_dir, resume=True, train_overrides=overrides), loss_history(run_dir),
                     f"resuming {run_dir.name} at step {step:,}" +
                     (f" (budget extended to {self._budget_text(extension)})" if extension else ""))

    def _extension(self, step: int, elapsed: float) -> dict | None:
        """A finished run goes on for the budget set in the Model panel."""
        try:
            _, t = self.query_one(ModelPicker).configs()
        except UsageError as e:
            self.notify(e.message, title="Can't resume", severity="error")
            return None
        if t.steps is not None:
            return {"steps": step + t.steps, "minutes": None}
        return {"minutes": elapsed / 60 + t.minutes, "steps": None}

    @staticmethod
    def _budget_text(overrides: dict) -> str:
        return f"{overrides['steps']:,} steps" if overrides.get("steps") else f"{overrides['minutes']:.1f} min"

    def _launch(self, plan: TrainPlan, history, note: str) -> None:
        self.query_one(ModelPicker).cancel_measure()
        self.session.begin(plan.run_dir, history)
        samples = self.query_one("#samples", SampleLog)
        samples.add_note(note)
        self.query_one(LossChart).show(self.session.train_points, self.session.val_points)
        self._set_running(True)
        self._train(plan)

    @on(Button.Pressed, "#pause")
    def action_pause(self) -> None:
        """Pause or resume training."""
        if self.session.state in (TrainingSession.TRAINING, TrainingSession.PAUSED):
            self.session.toggle_pause()
            self._set_running(True)

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        """Stop training and save the checkpoint."""
        if self.session.state in (TrainingSession.TRAINING, TrainingSession.PAUSED, TrainingSession.PREPARING):
            self.session.request_stop(save=True)
            self._set_running(True)

    def action_preset(self, name: str) -> None:
        """Choose a preset (from the command palette)."""
        if self.session.active:
            self.notify("a run is in progress: the model is fixed until it ends", severity="warning")
            return
        self.query_one("#preset", Select).value = name

    def action_chart_axis(self) -> None:
        """Plot against steps or minutes."""
        self.query_one(LossChart).toggle_axis()

    # -- the worker ----------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="train", description="training")
    def _train(self, plan: TrainPlan) -> TrainResult:
        try:
            return self._run(plan)
        finally:
            self.session.finished.set()         # in the thread: its loop may be stuck (see app._terminal_gone)

    def _run(self, plan: TrainPlan) -> TrainResult:
        session = self.session
        callbacks = PostingCallbacks(self, session, self.app.options.step_hz)
        if plan.resume:
            trainer = resume_trainer(plan.run_dir, callbacks, plan.train_overrides)
        else:
            # A run started from another reads its text over the parent's grown vocabulary.
            corpus = plan.corpus if plan.parent is None else encode_for_run(plan.source, plan.parent)
            trainer = new_trainer(corpus, plan.spec, plan.model_config, plan.train_config, plan.run_dir,
                                  callbacks, plan.encoding, parent=plan.parent)
        session.yardsticks = yardsticks_for(trainer.corpus, trainer.cfg.val_fraction)   # kept: instant after the first
        session.trainer = trainer
        try:
            return trainer.run(session.stop, session.pause)
        except Abandoned:
            if not plan.resume and not trainer.saved_step:     # None: left in a fine-tune's first validation
                delete_run(plan.run_dir)        # a new run left before its first validation: no empty husk
            raise
        finally:
            callbacks.flush()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """Training ended: report how, and put the setup back."""
        worker = event.worker
        if worker.group != "train" or worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                            WorkerState.CANCELLED):
            return
        samples = self.query_one("#samples", SampleLog)
        if worker.state == WorkerState.SUCCESS:
            self._finished(worker.result)
        elif isinstance(worker.error, Abandoned):
            samples.add_note("stopped without saving")
        elif worker.error is not None:
            message = describe_error(worker.error)
            samples.add_note(f"training stopped: {message}")
            self.notify(message, title="Training stopped", severity="error", timeout=15)
        trainer = self.session.trainer
        if trainer is not None and self.session.last_step is not None and trainer.step > 0:
            speed.record_run(trainer.model.config, trainer.cfg, trainer.precision, self.session.last_step.chars_per_sec)
            self.query_one(ModelPicker).refresh_presets()
            self.query_one(StartFrom).refresh_runs()          # the run can be started from now
        self.session.state = TrainingSession.IDLE
        self._set_running(False)

    def _finished(self, result: TrainResult) -> None:
        how = "stopped; saved" if result.stopped_early else "done; saved"
        name = result.run_dir.name
        text = (f"{how} {name} at step {result.steps:,} · best val {fmt.loss(result.best_val_loss)} nats/char "
                f"({fmt.bpc(result.best_val_loss)} bits/char)")
        samples = self.query_one("#samples", SampleLog)
        if math.isfinite(result.best_val_loss):
            for line in verdict(result.best_val_loss, _corpus_sha(self.session), self.session.yardsticks):
                samples.add_note(line)
        samples.add_note(text + " · press 2 to play with it")      # last: what was saved, what next
        self.notify(f"{text}. Press 2 to generate text with it.", title="Checkpoint saved", timeout=8)

    # -- live updates ----------------------------------------------------------------------
    def on_training_started(self, event: TrainingStarted) -> None:
        if self.session.state == TrainingSession.PREPARING:
            self.session.state = TrainingSession.TRAINING
        self.query_one("#samples", SampleLog).add_note(f"{event.summary} · saving to {event.run_dir.name}")
        self._set_running(True)

    def on_training_step(self, event: TrainingStep) -> None:
        r = event.report
        s = self.session
        s.last_step = r
        s.train_points.append((r.step, r.elapsed, r.train_loss))
        trainer = s.trainer
        total = trainer.cfg.steps if trainer is not None and trainer.cfg.budget_seconds is None else None
        self.query_one("#stats", TrainStats).show(r, s.last_eval, total, _corpus_sha(s), s.yardsticks)
        self.query_one("#progress", ProgressBar).update(progress=r.progress)
        now = time.monotonic()
        if now - self._last_chart >= self.app.options.chart_interval:
            self._last_chart = now
            self.query_one(LossChart).show(s.train_points, s.val_points)

    def on_training_eval(self, event: TrainingEval) -> None:
        r = event.report
        s = self.session
        s.last_eval = r
        s.val_points.append((r.step, r.elapsed, r.val_loss))
        self.query_one("#samples", SampleLog).add_sample(r)
        self.query_one(LossChart).show(s.train_points, s.val_points)
        self.query_one("#stats", TrainStats).show(s.last_step, r, None if s.trainer is None or
                                                  s.trainer.cfg.budget_seconds is not None else s.trainer.cfg.steps,
                                                  _corpus_sha(s), s.yardsticks)

    def on_training_sample(self, event: TrainingSample) -> None:
        self.query_one("#samples", SampleLog).add_sample(event.report, self.session.last_eval)

    def on_training_rolled_back(self, event: TrainingRolledBack) -> None:
        r, s = event.report, self.session
        s.train_points = [p for p in s.train_points if p[0] <= r.step]    # the steps it undid leave the chart
        s.val_points = [p for p in s.val_points if p[0] <= r.step]
        self.query_one("#samples", SampleLog).add_note(r.describe())
        self.query_one(LossChart).show(s.train_points, s.val_points)
        self.notify(r.describe(), title="Rolled back", severity="warning", timeout=10)

    def on_training_saved(self, event: TrainingSaved) -> None:
        self._status()

    def _set_running(self, running: bool) -> None:
        self.set_class(running, "-running")
        self.query_one("#setup").disabled = running
        state = self.session.state
        self.query_one("#start", Button).disabled = running
        pause = self.query_one("#pause", Button)
        pause.disabled = state not in (TrainingSession.TRAINING, TrainingSession.PAUSED)
        pause.label = "▶ Resume" if state == TrainingSession.PAUSED else "‖ Pause"
        self.query_one("#stop", Button).disabled = state not in (TrainingSession.TRAINING, TrainingSession.PAUSED)
        self.refresh_bindings()
        self._status()

    def _status(self) -> None:
        s = self.session
        if s.active:
            text = {"preparing": "preparing the run…", "training": "training", "paused": "paused (p resumes)",
                    "stopping": "stopping and saving…"}[s.state]
            text += f" · {s.run_dir.name}" if s.run_dir else ""
        elif self.corpus is None:
            text = "reading the corpus…"
        else:
            text = "ready · s starts"
        self.query_one("#train-status", Static).update(text, layout=False)


def _corpus_sha(session: TrainingSession) -> str | None:
    return session.trainer.corpus.sha256 if session.trainer is not None else None
