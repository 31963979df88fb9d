"""The Train screen's control row: Start, Pause/Resume, Stop and a line saying where the run
stands, each button enabled only where its action can act on the session's state."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from charlm.tui.train_session import TrainingSession

_ACTIVE = {"preparing": "preparing the run…", "training": "training", "paused": "paused (p resumes)",
           "stopping": "stopping and saving…"}


class TrainControls(Horizontal):
    def compose(self) -> ComposeResult:
        yield Button("▶ Start", id="start", variant="success", compact=True)
        yield Button("‖ Pause", id="pause", compact=True, disabled=True)
        yield Button("■ Stop", id="stop", variant="error", compact=True, disabled=True)
        yield Static("choose a corpus and a model, then Start", id="train-status")

    def show(self, session: TrainingSession, running: bool, corpus_ready: bool) -> None:
        """Buttons and status line for the session as it is now."""
        self.query_one("#start", Button).disabled = running
        pause = self.query_one("#pause", Button)
        pause.disabled = not session.stepping
        pause.label = "▶ Resume" if session.state == TrainingSession.PAUSED else "‖ Pause"
        self.query_one("#stop", Button).disabled = not session.stepping
        self.show_status(session, corpus_ready)

    def show_status(self, session: TrainingSession, corpus_ready: bool) -> None:
        if session.active:
            text = _ACTIVE[session.state] + (f" · {session.run_dir.name}" if session.run_dir else "")
        else:
            text = "ready · s starts" if corpus_ready else "reading the corpus…"
        self.query_one("#train-status", Static).update(Text(text), layout=False)
