"""Which model to play with: the run being trained (a snapshot of its weights at each use), or
any run under checkpoints/ (loaded in a worker). Generate and Inspect both pick through it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label
from textual.worker import Worker, WorkerState

from charlm.model.checkpoint import Checkpoint, load_checkpoint
from charlm.runs.listing import list_runs
from charlm.tui import format as fmt
from charlm.tui.errors import describe_error
from charlm.tui.generate_session import Source
from charlm.tui.widgets.select import Select

LIVE = "__live__"


class ModelSource(Horizontal):
    """A Label and a Select of models; posts `Picked` once a model is ready, `Failed` if not."""

    DEFAULT_CSS = """
    ModelSource { height: 1; margin: 0 1; }
    ModelSource > Select { width: 1fr; }
    """

    @dataclass
    class Picked(Message):
        source: Source

    @dataclass
    class Failed(Message):
        problem: str
        severity: str = "error"

    @dataclass
    class Loading(Message):
        path: Path

    def __init__(self, select_id: str, prompt: str = "pick a checkpoint, or the run being trained") -> None:
        super().__init__()
        self.select_id, self.prompt = select_id, prompt
        self.source: Source | None = None
        self._extra: list[Path] = []             # checkpoints opened from outside checkpoints/

    def compose(self) -> ComposeResult:
        yield Label("Model", classes="field-label")
        yield Select([], id=self.select_id, prompt=self.prompt, compact=True)

    @property
    def select(self) -> Select:
        return self.query_one(Select)

    @property
    def run_dir(self) -> Path | None:
        """The run directory of the model picked (the live run's too)."""
        value = self.select.value
        if value == LIVE:
            return self.app.session.run_dir
        return Path(value) if isinstance(value, str) else None

    def refresh_models(self) -> bool:
        """The live run (if any) first, then every run under checkpoints/. False: none at all."""
        options = []
        session = self.app.session
        if self._live_listed():
            options.append((Text(f"● the run being trained ({session.run_dir.name})"), LIVE))
        for run in list_runs():
            detail = run.problem or f"{run.corpus} · {run.shape} · {fmt.bpc(run.best_val_loss)} bits/char"
            options.append((Text(f"{run.name} · {detail}"), str(run.path)))
        listed = {v for _, v in options}
        options += [(Text(p.name), str(p)) for p in self._extra if str(p) not in listed]
        select = self.select
        current = select.value
        with self.prevent(Select.Changed):
            select.set_options(options)
            if any(v == current for _, v in options):
                select.value = current
        values = [v for _, v in options]
        if current == LIVE and LIVE not in values and str(session.run_dir) in values:
            select.value = str(session.run_dir)     # the run ended: its saved checkpoint from now on
        elif self.source is None and select.value is Select.NULL and options:
            select.value = options[0][1]     # the live run, else the newest: something to play with at once
        return bool(options)

    def open_run(self, path: Path) -> None:
        """Pick a run's checkpoint (from the Models screen, or outside checkpoints/)."""
        if path not in self._extra:
            self._extra.append(path)
        self.refresh_models()
        if self.select.value == str(path) and self.source is not None:
            return
        self.select.value = str(path)

    def open_live(self) -> None:
        """Pick the run being trained."""
        self.refresh_models()
        if self.select.value == LIVE or not self._live_listed():
            self._use_live()                # also says why when there is no run to use
        else:
            self.select.value = LIVE

    def _live_listed(self) -> bool:
        """Whether the run being trained is one of the options (there is one, and it is built)."""
        session = self.app.session
        return session.active and session.trainer is not None

    @on(Select.Changed)
    def _picked(self, event: Select.Changed) -> None:
        """Load the checkpoint picked (or use the live run)."""
        event.stop()
        if event.value == LIVE:
            self._use_live()
        elif isinstance(event.value, str):
            self.post_message(self.Loading(Path(event.value)))
            self._load(Path(event.value))

    def _use_live(self) -> None:
        session = self.app.session
        if session.trainer is None or not session.active:
            self.post_message(self.Failed("no run is being trained right now", "warning"))
            return
        self._ready(Source(f"live: {session.run_dir.name}", session.trainer.corpus.vocab,
                           snapshot=session.trainer.snapshot, detail="a snapshot of the current weights at each use"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def _load(self, path: Path) -> Checkpoint:
        return load_checkpoint(path)

    @on(Worker.StateChanged)
    def _loaded(self, event: Worker.StateChanged) -> None:
        """A checkpoint loaded, or it could not be."""
        worker = event.worker
        if worker.group != "load" or worker.node is not self:
            return
        event.stop()
        if worker.state == WorkerState.ERROR:
            self.source = None
            self.post_message(self.Failed(describe_error(worker.error)))
        elif worker.state == WorkerState.SUCCESS:
            ckpt: Checkpoint = worker.result
            m, step = ckpt.model_config, ckpt.metrics.get("step")
            name = ckpt.path.parent.name if ckpt.path.name in ("best", "last") else ckpt.path.name
            self._ready(Source(name, ckpt.vocab, model=ckpt.model,
                               detail=f"{m.cell} {m.layers}x{m.hidden} · step {step} · "
                                      f"{fmt.bpc(ckpt.metrics.get('best_val_loss'))} bits/char"))

    def _ready(self, source: Source) -> None:
        self.source = source
        self.post_message(self.Picked(source))
