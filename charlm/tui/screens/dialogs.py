"""Small modal dialogs: confirm, quit-while-training, a line of text, a run's loss chart."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult, ScreenStackError
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from charlm.runs.listing import loss_history
from charlm.tui.widgets.loss_chart import LossChart


class AnsweredOnce:
    """A screen that closes once, and only itself. Screen.dismiss pops whatever screen is on top:
    a second Enter, click or Escape queued behind the first closed the page under it too (the
    monkey's findings F6 and F7), and one handled after another screen had opened over it closed
    that screen and spent this one's answer, so the next failed the app (F17). Such input is
    dropped."""

    def dismiss(self, result=None) -> AwaitComplete:
        try:
            on_top = self.app.screen is self
        except ScreenStackError:              # the app is closing: no screens left
            on_top = False
        if not on_top:
            return AwaitComplete(_nothing())
        return super().dismiss(result)


class Dialog(AnsweredOnce, ModalScreen):
    """A modal dialog, answered once."""


async def _nothing() -> None:
    pass


class ConfirmDialog(Dialog):
    """A question with Yes / No; Escape means No."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Yes", show=False),
                Binding("n", "dismiss(False)", "No", show=False)]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.question), classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, id="yes", variant="error")
                yield Button(self.no, id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        """Answer with the button pressed."""
        self.dismiss(event.button.id == "yes")


class QuitDialog(Dialog):
    """Quitting while a run trains: save it, discard what is unsaved, or stay."""

    BINDINGS = [Binding("escape", "dismiss('cancel')", "Cancel")]

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"{self.what} is still training. Save its checkpoint before quitting?"),
                        classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save and quit", id="save", variant="success")
                yield Button("Quit without saving", id="discard", variant="error")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        """Answer with the button pressed."""
        self.dismiss(event.button.id)


class TextPrompt(Dialog):
    """One line of text (a file name, a new run name); Escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, value: str = ""):
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.question), classes="dialog-question")
            yield Input(self.value, id="answer")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        """Answer with the text typed."""
        self.dismiss(self.query_one("#answer", Input).value.strip() or None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        """No answer."""
        self.dismiss(None)


class ChartDialog(Dialog):
    """A saved run's loss chart, from its metrics.jsonl."""

    BINDINGS = [Binding("escape,q,c", "dismiss", "Close"), Binding("t", "axis", "Steps/min")]

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog chart-dialog"):
            yield Label(Text(f"{self.run_dir.name}: train and validation loss   (t: steps/minutes · esc: close)"),
                        classes="dialog-question")
            yield LossChart(id="run-chart")

    def on_mount(self) -> None:
        train, val = loss_history(self.run_dir)
        chart = self.query_one(LossChart)
        chart.empty_hint = "this run has no recorded losses yet"
        chart.show(train, val)

    def action_axis(self) -> None:
        """Plot against steps or minutes."""
        self.query_one(LossChart).toggle_axis()


class SweepDialog(Dialog):
    """The same prompt and seed at several temperatures, side by side (stacked when narrow)."""

    BINDINGS = [Binding("escape,q,w", "dismiss", "Close")]

    def __init__(self, prompt: str, seed: int, samples: list[tuple[float, str]]):
        super().__init__()
        self.prompt, self.seed, self.samples = prompt, seed, samples

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sweep"):
            yield Label(f"the same prompt and seed ({self.seed}) at {len(self.samples)} temperatures · esc closes",
                        classes="dialog-question")
            with Horizontal(id="sweep-columns"):
                for t, text in self.samples:
                    column = VerticalScroll(Static(Text(self.prompt, style="bold") + Text(text)), classes="sweep-column")
                    column.border_title = f"temperature {t:g}"
                    yield column
