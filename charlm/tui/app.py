"""The charlm app: three screens (Train, Generate, Models) as modes, the run in progress shared
between them, global keys, command palette entries, and quitting safely while training."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import WorkerCancelled, WorkerFailed

from charlm.config import PRESETS
from charlm.tui.options import AppOptions
from charlm.tui.screens.dialogs import QuitDialog
from charlm.tui.screens.generate import GenerateScreen
from charlm.tui.screens.help import HelpScreen
from charlm.tui.screens.inspect import InspectScreen
from charlm.tui.screens.models import ModelsScreen
from charlm.tui.screens.train import TrainScreen
from charlm.tui.training import TrainingSession

# (title, help, mode, screen action): every action, by name, in the command palette.
COMMANDS = [
    ("Train: start", "Start training with the corpus and model chosen", "train", "start"),
    ("Train: pause / resume", "Pause or resume the run in progress", "train", "pause"),
    ("Train: stop and save", "Stop training and save the checkpoint", "train", "stop"),
    ("Train: chart against steps / minutes", "Switch the loss chart's x axis", "train", "chart_axis"),
    *((f"Train: use the {name} preset", p.description, "train", f"preset('{name}')") for name, p in PRESETS.items()),
    ("Generate: generate", "Generate text from the prompt", "generate", "generate"),
    ("Generate: regenerate", "Generate again from the same prompt", "generate", "generate"),
    ("Generate: stop", "Stop the text streaming", "generate", "stop"),
    ("Generate: continue", "Go on from where the text stopped", "generate", "continue"),
    ("Generate: temperature up", "Higher temperature: more adventurous text", "generate", "temperature(0.1)"),
    ("Generate: temperature down", "Lower temperature: safer text (0 = greedy)", "generate", "temperature(-0.1)"),
    ("Generate: top-k up", "Sample among more characters", "generate", "top_k(5)"),
    ("Generate: top-k down", "Sample among fewer characters (0 = all)", "generate", "top_k(-5)"),
    ("Generate: top-p up", "Keep more probability mass (1 = all)", "generate", "top_p(0.05)"),
    ("Generate: top-p down", "Keep less probability mass", "generate", "top_p(-0.05)"),
    ("Generate: length up", "100 more characters per Generate / Continue", "generate", "length(100)"),
    ("Generate: length down", "100 fewer characters per Generate / Continue", "generate", "length(-100)"),
    ("Generate: clear", "Clear the output", "generate", "clear"),
    ("Generate: save text to a file", "Write the prompt and output to a file", "generate", "save"),
    ("Generate: copy text", "Copy the prompt and output to the clipboard", "generate", "copy"),
    ("Generate: colour by probability", "Colour each character by the model's probability", "generate", "colour"),
    ("Generate: use the run being trained", "Generate from a snapshot of the live weights", "generate", "use_live"),
    ("Models: open in Generate", "Open the selected run in Generate", "models", "open"),
    ("Models: resume training", "Continue training the selected run", "models", "resume"),
    ("Models: loss chart", "Show the selected run's loss chart", "models", "chart"),
    ("Models: rename", "Rename the selected run", "models", "rename"),
    ("Models: delete", "Delete the selected run (asks first)", "models", "delete"),
    ("Models: refresh", "Read checkpoints/ again", "models", "refresh"),
]


class CharLMApp(App[int]):
    """Train, watch and play with a character model."""

    CSS_PATH = "app.tcss"
    TITLE = "charlm"
    MODES = {"train": TrainScreen, "generate": GenerateScreen, "models": ModelsScreen, "inspect": InspectScreen}
    DEFAULT_MODE = "train"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
    BINDINGS = [
        Binding("1", "switch_mode('train')", "Train", show=False),
        Binding("2", "switch_mode('generate')", "Generate", show=False),
        Binding("3", "switch_mode('models')", "Models", show=False),
        Binding("4", "switch_mode('inspect')", "Inspect", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, options: AppOptions | None = None):
        super().__init__()
        self.options = options or AppOptions()
        self.session = TrainingSession()
        self.last_generated = ""             # the Generate screen's last text, for Inspect to read
        self.theme = self.options.theme

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title in (("train", "Train"), ("generate", "Generate"), ("models", "Models"), ("inspect", "Inspect")):
            yield SystemCommand(f"Go to {title}", f"Show the {title} screen", partial(self.switch_mode, mode))
        yield SystemCommand("Help: keys", "Every key, by screen", self.action_help)
        yield SystemCommand("Light / dark theme", "Switch between the light and dark theme", self.action_toggle_dark)
        for title, help_text, mode, action in COMMANDS:
            yield SystemCommand(title, help_text, partial(self.run_on, mode, action))

    async def run_on(self, mode: str, action: str) -> None:
        """Show `mode`'s screen and run one of its actions there."""
        await self.switch_mode(mode)
        await self.screen.run_action(action)

    def action_help(self) -> None:
        """Show every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Quit; while a run trains, ask whether to save it first."""
        session = self.session
        if not session.active:
            self.exit(0)
            return
        if isinstance(self.screen, QuitDialog):
            return
        name = session.run_dir.name if session.run_dir else "A run"

        def answer(choice: str | None) -> None:
            if choice in ("save", "discard"):
                session.request_stop(save=choice == "save")
                self.notify("saving the checkpoint, then quitting…" if choice == "save" else "quitting…",
                            timeout=30)
                self._exit_when_stopped()

        self.push_screen(QuitDialog(name), answer)

    @work(exclusive=True, group="quit")
    async def _exit_when_stopped(self) -> None:
        for worker in [w for w in self.workers if w.group == "train"]:
            try:
                await worker.wait()
            except (WorkerFailed, WorkerCancelled):
                pass    # how the run ended is already reported by the Train screen's handler
        self.exit(0)

    def on_unmount(self) -> None:
        # However the app ends, the training thread must end too (it saves unless told not to).
        self.session.request_stop(save=not self.session.abandon.is_set())
