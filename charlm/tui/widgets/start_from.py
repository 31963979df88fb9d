"""Choose where a new run starts: from nothing (random weights), or from any saved run, whose
corpus, shape and loss show underneath. Where the corpus is small and a run would help, a tip
says which and by how much (the advice `charlm train` gives); nothing is chosen for the person.

The chosen run is loaded in a worker and goes up to the screen as `StartChosen`."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static
from textual.worker import Worker, WorkerState

from charlm.runs.listing import RunInfo, list_runs
from charlm.train.finetune import (BASE_MINUTES, BASE_SET, Parent, StartingPoint, base_would_help, load_parent,
                                   shape_text, suggest_start)
from charlm.tui import format as fmt
from charlm.tui.errors import describe_error
from charlm.tui.messages import StartChosen
from charlm.tui.widgets.select import Select

NOTHING = "__nothing__"


class StartFrom(Vertical):
    """The start select, what the chosen run is, and the tip."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.runs: dict[str, RunInfo] = {}
        self.chosen: Parent | None = None
        self.loading: Worker | None = None       # the load of the run picked last, until it ends
        self.tip: StartingPoint | float | None = None

    def compose(self) -> ComposeResult:
        yield Label("Start from", classes="field-title")
        yield Select([("nothing (random weights)", NOTHING)], id="start-from", value=NOTHING, allow_blank=False,
                     compact=True)
        yield Static("", id="start-info", classes="info")

    def on_mount(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """Read the runs under checkpoints/ again (a run just finished, or one was deleted)."""
        self._list()

    @work(thread=True, exclusive=True, exit_on_error=False, group="start-list")
    def _list(self) -> list[RunInfo]:
        return [r for r in list_runs() if r.problem is None]

    @work(thread=True, exclusive=True, exit_on_error=False, group="start-load")
    def _load(self, path: str) -> Parent:
        return load_parent(path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="start-tip", description="starting-point tip")
    def _find_tip(self, corpus, train_chars: int, english: bool) -> StartingPoint | float | None:
        """A run to start from, else (for a small English text) what a base model would gain."""
        return suggest_start(corpus, train_chars) or base_would_help(train_chars, english)

    def corpus_changed(self, corpus, train_chars: int, english: bool) -> None:
        """A corpus is read (`english`: its yardsticks' verdict): look for a run worth starting
        from (shown as a tip, never chosen)."""
        self.tip = None
        self._find_tip(corpus, train_chars, english)

    @on(Worker.StateChanged)
    def _done(self, event: Worker.StateChanged) -> None:
        """The run list, a loaded run or a tip arrived."""
        worker = event.worker
        if worker.group not in ("start-list", "start-load", "start-tip"):
            return
        event.stop()
        if worker.state == WorkerState.SUCCESS:
            if worker.group == "start-list":
                self._fill(worker.result)
            elif worker.group == "start-load":
                if worker is not self.loading:
                    return                          # a run picked before the one picked now
                self.loading, self.chosen = None, worker.result
                self.post_message(StartChosen(self.chosen))
            else:
                self.tip = worker.result
            self._show()
        elif worker.state == WorkerState.ERROR:
            message = describe_error(worker.error)
            if worker.group == "start-load":
                if worker is not self.loading:
                    return
                self.loading, self.chosen = None, None
                with self.prevent(Select.Changed):
                    self.query_one("#start-from", Select).value = NOTHING
                self.post_message(StartChosen(None))
                self.notify(message, title="Can't start from that run", severity="error")
            self._show()

    def _fill(self, runs: list[RunInfo]) -> None:
        self.runs = {str(r.path): r for r in runs}
        select = self.query_one("#start-from", Select)
        current = select.value
        options = [("nothing (random weights)", NOTHING)]
        options += [(Text(f"{r.name} · {r.shape} · {r.corpus}"), str(r.path)) for r in runs]
        with self.prevent(Select.Changed):
            select.set_options(options)
            select.value = current if current in self.runs or current == NOTHING else NOTHING
        if select.value == NOTHING and (self.chosen is not None or self.loading is not None):
            self._picked_nothing()      # the chosen run was renamed or deleted meanwhile

    @on(Select.Changed, "#start-from")
    def _picked(self, event: Select.Changed) -> None:
        """A run picked: load it (its shape then fixes the model); nothing: back to random weights."""
        if event.value == NOTHING or event.value == Select.BLANK:
            self._picked_nothing()
        else:
            self.loading = self._load(str(event.value))
        self._show()

    def _picked_nothing(self) -> None:
        self.loading, self.chosen = None, None      # a load still under way is dropped when it ends
        self.post_message(StartChosen(None))

    def _show(self) -> None:
        info = self.query_one("#start-info", Static)
        value = self.query_one("#start-from", Select).value
        if value != NOTHING and value in self.runs:
            r = self.runs[value]
            loaded = self.chosen is not None and self.chosen.run_dir is not None and str(self.chosen.run_dir) == value
            shape = shape_text(self.chosen.config) if loaded else r.shape
            info.update(Text.assemble(
                f"{shape} · trained on ", (str(r.corpus), "bold"), f" ({fmt.count(r.corpus_chars or 0)} chars) · "
                f"{r.steps or 0:,} steps · best {fmt.loss(r.best_val_loss)} nats/char",
                ("" if loaded else " · loading…", "dim")))
        elif isinstance(self.tip, StartingPoint):
            t = self.tip
            info.update(Text.assemble(
                ("tip:", "bold"), f" {t.run.name} ({t.run.corpus}) knows {t.coverage:.0%} of this text's characters; "
                f"starting from it is predicted ~{t.gain:.2f} nats/char better here"))
        elif self.tip is not None:
            info.update(f"[b]tip:[/b] a base trained once on {BASE_SET} ({BASE_MINUTES} min) would start this small "
                        f"text ~{self.tip:.2f} nats/char better")
        else:
            info.update("[dim]random weights: learns everything from this text[/]")
