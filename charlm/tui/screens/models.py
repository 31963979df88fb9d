"""The Models screen: every run under checkpoints/ (wherever charlm.paths puts it), to open in
Generate, resume, chart, rename or delete."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Static

from charlm.errors import UsageError
from charlm.paths import checkpoints_place
from charlm.runs.directory import RunDir
from charlm.runs.listing import RunInfo, delete_run, list_runs, rename_run
from charlm.train.finetune import lineage_text
from charlm.tui import format as fmt
from charlm.tui.screens.base import AppScreen
from charlm.tui.screens.dialogs import ChartDialog, ConfirmDialog, TextPrompt
from charlm.tui.widgets.nav import NavBar

COLUMNS = ("run", "corpus", "started from", "model", "params", "steps", "best bits/char", "saved")


class ModelsScreen(AppScreen):
    BINDINGS = [
        Binding("g", "open", "Generate", tooltip="open in Generate: play with the selected run"),
        Binding("r", "resume", "Resume", tooltip="resume training: the selected run goes on (its chart too)"),
        Binding("c", "chart", "Chart", tooltip="loss chart: the selected run's"),
        Binding("n", "rename", "Rename", tooltip="rename the selected run"),
        Binding("d,delete", "delete", "Delete", tooltip="delete the selected run (asks first)"),
        Binding("f5", "refresh", "Refresh", tooltip="refresh: read checkpoints/ again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunInfo] = []

    def compose(self) -> ComposeResult:
        yield NavBar("models")
        yield Static("", id="runs-home")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-detail")
        with Horizontal(id="run-actions"):
            for label, action, variant in (("Generate", "open", "success"), ("Resume", "resume", "primary"),
                                           ("Chart", "chart", "default"), ("Rename", "rename", "default"),
                                           ("Delete", "delete", "error"), ("Refresh", "refresh", "default")):
                yield Button(label, id=f"run-{action}", variant=variant, compact=True, action=f"screen.{action}")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*(Text(c) for c in COLUMNS))
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        """Read checkpoints/ again."""
        table = self.query_one(DataTable)
        selected = self.selected()
        home = checkpoints_place()
        self.query_one("#runs-home", Static).update(Text(f"runs in {home.path} ({home.why})"))
        self.runs = list_runs(home.path)
        table.clear()
        for run in self.runs:
            if run.problem:
                table.add_row(Text(run.name), Text(f"unreadable: {run.problem}", style="red"),
                              *(Text() for _ in range(6)), key=str(run.path))
                continue
            cells = (run.name, run.corpus or "?", run.init.get("name", "?") if run.init else "–", run.shape,
                     fmt.count(run.params), f"{run.steps:,}" if run.steps is not None else "?",
                     fmt.bpc(run.best_val_loss), fmt.date(run.saved_at))
            table.add_row(*(Text(str(c)) for c in cells), key=str(run.path))
        if selected is not None:
            for i, run in enumerate(self.runs):
                if run.path == selected.path:
                    table.move_cursor(row=i)
        self._detail()
        table.focus()

    def selected(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row is None or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        """Show where the highlighted run lives and what can be done with it."""
        run = self.selected()
        detail = self.query_one("#run-detail", Static)
        if run is None:
            detail.update(Text(f"No runs yet in {checkpoints_place().path}. Train one on the Train screen (press 1)."))
            return
        state = "unreadable" if run.problem else ("can be resumed" if run.resumable else "cannot be resumed")
        done = "" if run.progress is None else f" · budget {min(run.progress, 1.0):.0%} used"
        trained = "" if run.elapsed is None else f" · trained {fmt.duration(run.elapsed)}"
        start = f"\nstarted from {lineage_text(run.init)}" if run.init else ""
        detail.update(Text(f"{run.path}\n{state}{done}{trained}{start}"))

    @on(DataTable.RowSelected)
    async def _row_chosen(self) -> None:
        """Enter or a double click opens the run in Generate."""
        await self.action_open()

    def _run_or_warn(self) -> RunInfo | None:
        run = self.selected()
        if run is None:
            self.notify("no run selected", severity="warning")
        return run

    def _idle_run_or_warn(self, verb: str) -> RunInfo | None:
        """The selected run, unless none is selected or it is the one training (then say so)."""
        run = self._run_or_warn()
        session = self.app.session
        if run is not None and session.active and session.run_dir is not None and Path(session.run_dir) == run.path:
            self.notify(f"that run is training: stop it before {verb}", severity="warning")
            return None
        if run is not None:
            try:
                RunDir(run.path).check_idle(f"wait for it to finish before {verb}")    # a `charlm train` elsewhere
            except UsageError as e:
                self.notify(e.message, severity="error")
                return None
        return run

    async def action_open(self) -> None:
        """Open the run in Generate."""
        run = self._run_or_warn()
        if run is not None:
            (await self.app.show_page("generate")).open_run(run.path)

    async def action_resume(self) -> None:
        """Continue training the run, its chart continuing too."""
        run = self._run_or_warn()
        if run is None:
            return
        if self.app.session.active:
            self.notify("a run is training: stop it first (press 1, then x)", severity="warning")
            return
        (await self.app.show_page("train")).resume_run(run.path)

    def action_chart(self) -> None:
        """Show the run's loss chart."""
        run = self._run_or_warn()
        if run is not None:
            self.app.push_screen(ChartDialog(run.path))

    def action_rename(self) -> None:
        """Rename the run's directory."""
        run = self._idle_run_or_warn("renaming")
        if run is None:
            return

        def done(name: str | None) -> None:
            if not name or name == run.name:
                return
            try:
                rename_run(run.path, name)
            except (UsageError, OSError) as e:
                self.notify(e.message if isinstance(e, UsageError) else f"could not rename: {e}", severity="error")
                return
            self.notify(f"renamed {run.name} to {name}")
            self.action_refresh()

        self.app.push_screen(TextPrompt(f"New name for {run.name}", run.name), done)

    def action_delete(self) -> None:
        """Delete the run (asks first)."""
        run = self._idle_run_or_warn("deleting")
        if run is None:
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_run(run.path)
            except (UsageError, OSError) as e:
                self.notify(e.message if isinstance(e, UsageError) else f"could not delete: {e}", severity="error")
                return
            self.notify(f"deleted {run.name}")
            self.action_refresh()

        self.app.push_screen(ConfirmDialog(f"Delete {run.name} and all its checkpoints? This cannot be undone.",
                                           yes="Delete", no="Keep"), done)
