"""The Train screen, what opens first: pick a corpus and a model, press Start, and watch the
loss fall and the samples turn from noise into words into verse."""

from __future__ import annotations

from pathlib import Path

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Input, Select
from textual.worker import Worker, WorkerState

from charlm.errors import UsageError
from charlm.runs.listing import loss_history
from charlm.train.reports import TrainResult
from charlm.tui.messages import CorpusFailed, CorpusReady, StartChosen, TrainingEnded, TrainingSaved, TrainingStarted
from charlm.tui.screens.base import AppScreen
from charlm.tui.train_session import PostingCallbacks, TrainingSession, TrainPlan, new_plan, resume_plan
from charlm.tui.widgets.corpus_picker import CorpusPicker
from charlm.tui.widgets.loss_chart import LossChart
from charlm.tui.widgets.model_picker import ModelPicker
from charlm.tui.widgets.nav import NavBar
from charlm.tui.widgets.start_from import StartFrom
from charlm.tui.widgets.train_controls import TrainControls
from charlm.tui.widgets.train_live import TrainLive


class TrainScreen(AppScreen):
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="start: train with the corpus and model on the left"),
        Binding("p,space", "pause", "Pause/Resume", tooltip="pause / resume the run in progress"),
        Binding("x", "stop", "Stop & save", tooltip="stop and save: the checkpoint is kept"),
        Binding("c", "chart_axis", "Steps/min", tooltip="chart against steps / minutes: the loss chart's x axis"),
        # A path typed from anywhere on the screen lands in the path field: its first character would
        # otherwise act as a key ("s" starts a run, "2" opens Generate) before the field is reached.
        Binding("slash", "type_path('/')", "Path",
                tooltip="type a path: / ~ or . starts one in the corpus field (→ completes it)"),
        Binding("tilde", "type_path('~')", "Path", show=False, tooltip="type a path: from your home folder"),
        Binding("full_stop", "type_path('.')", "Path", show=False, tooltip="type a path: relative to here"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.corpus: CorpusReady | None = None
        self.start_run = None                  # the run a new run starts from (charlm.train.finetune.Parent), if any

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
                yield TrainControls(id="train-controls")
                yield TrainLive(id="live-view")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#start", Button).focus()

    def on_screen_resume(self) -> None:
        """Back on this screen: runs may have been made, renamed or deleted meanwhile."""
        if not self.session.active:
            self.query_one(StartFrom).refresh_runs()

    # -- corpus and speed estimates ------------------------------------------------------
    def on_corpus_ready(self, event: CorpusReady) -> None:
        self.corpus, corpus = event, event.corpus
        val_fraction = self.query_one(ModelPicker).initial[2].get("val_fraction", 0.1)
        train_chars = len(corpus.split(val_fraction)[0])
        self.query_one(ModelPicker).set_corpus(train_chars, len(corpus.vocab), event.yardsticks.difficulty())
        self.query_one(StartFrom).corpus_changed(corpus, train_chars, event.yardsticks.english_like)
        self._status()
        field = self.query_one("#corpus-path", Input)   # its path, read: Start next (not while typing another)
        if self.focused is field and field.value.strip() == event.spec:
            self.query_one("#start", Button).focus()

    def on_start_chosen(self, event: StartChosen) -> None:
        """A run to start from (or none): its shape fixes the model."""
        self.start_run = event.parent
        self.query_one(ModelPicker).set_parent(event.parent.config if event.parent else None)

    def on_corpus_failed(self, event: CorpusFailed) -> None:
        self.corpus = None
        self._status()

    # -- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "start":
            return not self.session.active
        if action == "type_path":
            return not self.session.active           # the setup is fixed while a run is in progress
        if action in ("pause", "stop"):
            return self.session.stepping
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
            plan, note = new_plan(self.corpus, *self.query_one(ModelPicker).configs(), self.start_run)
        except UsageError as e:
            self.notify(e.message, title="Can't start", severity="error")
            return
        self._launch(plan, ([], []), note)

    def resume_run(self, run_dir: Path) -> None:
        """Continue a saved run (from the Models screen), its chart continuing too."""
        if self.session.active:
            self.notify("a run is in progress here: stop it before resuming another", severity="warning")
            return
        try:
            plan, note = resume_plan(run_dir, lambda: self.query_one(ModelPicker).configs()[1],
                                     self.app.options.sample_every)
        except UsageError as e:
            self.notify(e.message, title="Can't resume", severity="error")
            return
        self._launch(plan, loss_history(run_dir), note)

    def _launch(self, plan: TrainPlan, history, note: str) -> None:
        self.query_one(ModelPicker).timing.cancel()      # timing now would measure the two competing
        self.session.begin(plan.run_dir, history)
        self.query_one(TrainLive).note(note)
        self.query_one(TrainLive).show_history()
        self._set_running(True)
        self._train(plan, PostingCallbacks(self.query_one(TrainLive), self.session, self.app.options.step_hz),
                    self.session)

    @on(Button.Pressed, "#pause")
    def action_pause(self) -> None:
        """Pause or resume training."""
        if self.session.stepping:
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

    def action_type_path(self, start: str) -> None:
        """Start typing a corpus path: the path field takes focus with `start` typed."""
        self.query_one(CorpusPicker).type_path(start)

    def on_paste(self, event: events.Paste) -> None:
        """A path pasted while no text field has focus (the screen opens on Start) is a corpus path."""
        text = event.text.strip()
        if text and "\n" not in text and not self.session.active:
            event.stop()
            self.query_one(CorpusPicker).type_path(text)

    def action_chart_axis(self) -> None:
        """Plot against steps or minutes."""
        self.query_one(LossChart).toggle_axis()

    # -- the worker ----------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="train", description="training")
    def _train(self, plan: TrainPlan, callbacks: PostingCallbacks, session: TrainingSession) -> TrainResult:
        # `session` given, not read through self.app: once the app has ended, the screen has no
        # app to find it through, and `finished` must still be set (the monkey's finding F10).
        try:
            return session.run(plan, callbacks)
        finally:
            session.finished.set()              # in the thread: its loop may be stuck (see app._terminal_gone)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """Training ended: report how, and put the setup back."""
        worker = event.worker
        if worker.group != "train" or worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                            WorkerState.CANCELLED):
            return
        # Through the live panel's queue: behind the last reports the trainer posted there.
        # Cancelled is the app closing (Textual cancels its workers; the thread saves and returns): no error.
        error = worker.error if worker.state == WorkerState.ERROR else None
        self.query_one(TrainLive).post_message(TrainingEnded(worker.result if worker.state == WorkerState.SUCCESS
                                                             else None, error))
        trainer = self.session.trainer
        if trainer is not None and trainer.step > 0:          # the trainer recorded its speed: show it
            self.query_one(ModelPicker).refresh_presets()
            self.query_one(StartFrom).refresh_runs()          # the run can be started from now
        self.session.state = TrainingSession.IDLE
        self._set_running(False)

    # -- live updates ----------------------------------------------------------------------
    def on_training_started(self, event: TrainingStarted) -> None:
        if self.session.state == TrainingSession.PREPARING:
            self.session.state = TrainingSession.TRAINING
        self._set_running(True)

    def on_training_saved(self, event: TrainingSaved) -> None:
        self._status()

    def _set_running(self, running: bool) -> None:
        self.set_class(running, "-running")
        self.query_one("#setup").disabled = running
        self.query_one(TrainControls).show(self.session, running, self.corpus is not None)
        self.refresh_bindings()

    def _status(self) -> None:
        self.query_one(TrainControls).show_status(self.session, self.corpus is not None)
