"""The top line of every screen: where you are, where else to go (click or 1-4), and the
state of the run in progress, visible from every screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from charlm.tui import format as fmt


class NavBar(Horizontal):
    """Mode tabs on the left, the training status on the right."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; }
    NavBar > #nav-tabs { width: auto; }
    NavBar > #nav-status { width: 1fr; text-align: right; padding-right: 1; color: $text-muted; }
    """

    def __init__(self, current: str):
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        parts = [" [b]charlm[/b] "]
        for key, (mode, (title, _, _)) in enumerate(self.app.PAGES.items(), 1):     # the app's pages, keys 1-4
            label = f" {key} {title} "
            if mode == self.current:
                parts.append(f"[reverse b]{label}[/]")
            else:
                parts.append(f"[@click=app.switch_mode('{mode}')]{label}[/]")
        yield Static(" ".join(parts), id="nav-tabs")
        yield Static("", id="nav-status")

    def on_mount(self) -> None:
        self.set_interval(0.5, self.refresh_status)
        self.refresh_status()

    def refresh_status(self) -> None:
        session = self.app.session
        report = session.last_step
        if not session.active:
            text = ""
        elif report is None:
            text = f"● {session.state}…"
        else:
            text = (f"● {session.state} · step {report.step:,} · loss {fmt.loss(report.train_loss)} · "
                    f"{report.progress:.0%}")
        self.query_one("#nav-status", Static).update(text, layout=False)
