"""The charlm app: four screens (Train, Generate, Models, Inspect) as modes, the run in progress shared
between them, global keys, command palette entries, and quitting safely while training."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Iterable
from functools import partial

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import ThemeProvider
from textual.worker import WorkerCancelled, WorkerFailed

from charlm import paths
from charlm.machine.allocator import give_back_freed_memory
from charlm.tui import textual_fixes
from charlm.tui.keys import Section, commands, sections
from charlm.tui.options import AppOptions
from charlm.tui.screens.dialogs import QuitDialog
from charlm.tui.screens.generate import GenerateScreen
from charlm.tui.screens.help import HelpScreen
from charlm.tui.screens.inspect import InspectScreen
from charlm.tui.screens.models import ModelsScreen
from charlm.tui.screens.palette import Palette
from charlm.tui.screens.train import TrainScreen
from charlm.tui.terminal import hung_up, watch_for_hang_up
from charlm.tui.train_session import TrainingSession
from charlm.tui.widgets.inspect_text import InspectText

# How long a run whose terminal hung up may take to finish its step and save before the process
# ends anyway (its last checkpoint is whole either way).
SAVE_WAIT = 300.0
# Seconds between hand-backs of freed memory while no run trains (see _give_back_freed_memory).
GIVE_BACK_EVERY = 10.0


class CharLMApp(App[int]):
    """Train, watch and play with a character model."""

    CSS_PATH = "app.tcss"
    TITLE = "charlm"
    # mode -> (title, screen, widgets whose keys work there): the tabs, keys 1-4, help and palette
    PAGES = {"train": ("Train", TrainScreen, ()), "generate": ("Generate", GenerateScreen, ()),
             "models": ("Models", ModelsScreen, ()), "inspect": ("Inspect", InspectScreen, (InspectText,))}
    MODES = {mode: screen for mode, (_, screen, _) in PAGES.items()}
    DEFAULT_MODE = "train"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
    BINDINGS = [
        Binding("1", "switch_mode('train')", "Train", show=False, tooltip="the Train screen (or click its tab)"),
        Binding("2", "switch_mode('generate')", "Generate", show=False, tooltip="the Generate screen"),
        Binding("3", "switch_mode('models')", "Models", show=False, tooltip="the Models screen"),
        Binding("4", "switch_mode('inspect')", "Inspect", show=False, tooltip="the Inspect screen"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="this help: every key"),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False, tooltip="light / dark theme"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="quit (asks whether to save a run in progress)"),
    ]

    def __init__(self, options: AppOptions | None = None):
        textual_fixes.apply()
        super().__init__()
        self.options = options or AppOptions()
        self.session = TrainingSession()
        self.last_generated = ""             # the Generate screen's last text, for Inspect to read
        self.theme = self.options.theme

    async def on_event(self, event: events.Event) -> None:
        if textual_fixes.press_on_a_removed_widget(self, event):
            return
        await super().on_event(event)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (title, _, _) in self.PAGES.items():
            yield SystemCommand(f"Go to {title}", f"Show the {title} screen", partial(self.switch_mode, mode))
        yield SystemCommand("Help: keys", "Every key, by screen", self.action_help)
        yield SystemCommand("Light / dark theme", "Switch between the light and dark theme", self.action_toggle_dark)
        for title, help_text, mode, action in commands(self.key_sections()):
            yield SystemCommand(title, help_text, partial(self.run_on, mode, action))

    def key_sections(self) -> list[Section]:
        """Every key, by screen, read from the bindings (charlm.tui.keys)."""
        return sections(self.BINDINGS, self.PAGES)

    async def run_on(self, mode: str, action: str) -> None:
        """Show `mode`'s screen and run one of its actions there."""
        await (await self.show_page(mode)).run_action(action)

    async def show_page(self, mode: str) -> Screen:
        """Switch to `mode` and return its page: the screen itself, not a dialog left open over it
        (the monkey's seed 17 asked a "Save as" prompt to open a run)."""
        await self.switch_mode(mode)
        page = self.PAGES[mode][1]
        return next(s for s in reversed(self.screen_stack) if isinstance(s, page))

    def notify(self, message: str, **kwargs) -> None:
        """Every notification is plain text, whatever a widget's notify passes on: most carry what
        a person typed (a path, a name), and "[a=-i]" in one was read as a tag and crashed the app
        (the monkey's finding F3)."""
        super().notify(message, **(kwargs | {"markup": False}))

    def action_command_palette(self) -> None:
        """Open the command palette (ctrl+p) unless it is on top already. Ours closes once
        (charlm.tui.screens.palette) and has no fixed id: Textual's `--command-palette` id made a
        second palette a DuplicateIds crash while one opened before a page switch was still
        mounted on the other page (the monkey's F12, seed 101)."""
        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(Palette())

    def search_themes(self) -> None:
        """The palette's "Theme" command: Textual's theme search, in a palette that closes once."""
        self.push_screen(Palette(providers=[ThemeProvider], placeholder="Search for themes…"))

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
    async def _exit_when_stopped(self, return_code: int = 0) -> None:
        for worker in [w for w in self.workers if w.group == "train"]:
            try:
                await worker.wait()
            except (WorkerFailed, WorkerCancelled):
                pass    # how the run ended is already reported by the Train screen's handler
        self.exit(return_code, return_code=return_code)

    def on_load(self) -> None:
        # Before any screen reads a text: notes (the cache's, charlm.paths) as notifications.
        paths.say_note = lambda note: self.notify(note, title="charlm", severity="warning", timeout=20)

    def on_mount(self) -> None:
        self.set_interval(GIVE_BACK_EVERY, self._give_back_freed_memory)
        if self.is_headless:
            return      # under test: the terminal and the process's signals are the test's
        stdin = sys.__stdin__
        if stdin is not None and stdin.isatty():
            watch_for_hang_up(stdin.fileno(), self._terminal_gone)
        if sys.platform != "win32":                  # whose event loops take no signal handlers
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) is not signal.SIG_IGN:     # nohup: left ignored
                    asyncio.get_running_loop().add_signal_handler(signum, self._asked_to_end, signum)

    def _give_back_freed_memory(self) -> None:
        """Memory that work other than training freed (an analysis, a 3x512 loaded or sampled:
        300-700 MB in the monkey's long sessions) stays with the process, which keeps freed memory
        for training's sake (charlm.machine.allocator); while no run trains it goes back to the
        system. Not while one trains: its steps reuse those pages, and its end gives them back.
        Off the UI's thread: a GB takes ~0.25 s, nothing to give back ~0.5 ms."""
        if self.session.state in (TrainingSession.IDLE, TrainingSession.PAUSED):
            self.run_worker(give_back_freed_memory, name="give back freed memory", group="give-back",
                            thread=True, exit_on_error=False)

    def _asked_to_end(self, signum: int) -> None:
        """SIGTERM (docker stop, kill, a logout) or SIGHUP: save the run without its closing
        validation and leave as a quit does, giving the terminal back; the status says which
        signal. A SIGHUP whose terminal is gone takes the hang-up path (nothing can be drawn)."""
        stdin = sys.__stdin__
        if signum == signal.SIGHUP and stdin is not None and stdin.isatty() and hung_up(stdin.fileno()):
            threading.Thread(target=self._terminal_gone, name="charlm-hang-up", daemon=True).start()
            return
        self.session.request_stop(save=not self.session.abandon.is_set(), hurry=True)
        self._exit_when_stopped(128 + signum)

    def _terminal_gone(self) -> None:
        """(In the watching thread.) Do what "Save and quit" does, as no one is left to ask, then
        end the process: Textual's teardown would wait forever to write to the dead terminal."""
        self.session.request_stop(save=not self.session.abandon.is_set())
        self.session.finished.wait(SAVE_WAIT)
        os._exit(128 + signal.SIGHUP)          # the status a hangup gives a program it ends

    def _handle_exception(self, error: Exception) -> None:
        # (private: Textual's one door for an error that ends the app.) A screen that a key began
        # to mount just before the app exits (say, while a quit waits for the run to save) finds
        # its widgets already taken down: NoMatches from Textual's widgets and ours, which then
        # printed a traceback over a quit that went as asked (the monkey's F15, F16).
        cause = error.error if isinstance(error, WorkerFailed) else error
        if self.return_code is not None and isinstance(cause, NoMatches):
            self.log.warning(f"while exiting: {cause!r}")
            return
        super()._handle_exception(error)

    def on_unmount(self) -> None:
        paths.say_note = paths.note_to_stderr
        # However the app ends, the training thread must end too (it saves unless told not to).
        self.session.request_stop(save=not self.session.abandon.is_set())
