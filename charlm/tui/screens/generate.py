"""The Generate screen: pick a checkpoint (or the run being trained), give a prompt, and watch
text stream, changing the temperature, top-k, top-p and length while it does."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Footer, TextArea

from charlm.errors import UsageError
from charlm.generate.sampler import check_prompt, unknown_note
from charlm.tui.generate_session import LiveSettings, PickNext, Source, make_sampler
from charlm.tui.screens.base import AppScreen
from charlm.tui.widgets.generation_panel import GenerationPanel
from charlm.tui.widgets.knobs import Knobs
from charlm.tui.widgets.model_source import LIVE, ModelSource  # noqa: F401  (LIVE: the live run's entry)
from charlm.tui.widgets.nav import NavBar
from charlm.tui.widgets.output import LEGEND, OutputView

# The screen's keys; a binding's tooltip is its line in the help and its command in the palette (tui/keys.py).
KEYS = [
    Binding("ctrl+g", "generate", "Generate", priority=True, tooltip="generate: text from the prompt"),
    Binding("escape", "stop", "Stop", tooltip="stop: the text stops streaming (and the keys leave the prompt)"),
    Binding("p", "edit_prompt", "Prompt", tooltip="prompt: type in it (esc leaves it, ctrl+g generates from it)"),
    Binding("c", "continue", "Continue", tooltip="continue: go on from where the text stopped"),
    Binding("left,minus", "nudge('temperature', -0.05)", "Temperature −", show=False,
            tooltip="temperature down: safer text (0 = greedy), from the very next character"),
    Binding("right,plus,equals_sign", "nudge('temperature', 0.05)", "Temperature", key_display="←/→",
            tooltip="temperature up: more adventurous text, from the very next character"),
    Binding("left_square_bracket", "nudge('top_k', -5)", "top-k −", show=False, tooltip="top-k down: sample among fewer characters (0 = all)"),
    Binding("right_square_bracket", "nudge('top_k', 5)", "top-k +", show=False, tooltip="top-k up: sample among more characters"),
    Binding("left_curly_bracket", "nudge('top_p', -0.05)", "top-p −", show=False, tooltip="top-p down: keep less probability mass"),
    Binding("right_curly_bracket", "nudge('top_p', 0.05)", "top-p +", show=False, tooltip="top-p up: keep more probability mass (1 = all)"),
    Binding("less_than_sign", "nudge('length', -100)", "length −", show=False, tooltip="length down: 100 fewer characters per Generate / Continue"),
    Binding("greater_than_sign", "nudge('length', 100)", "length +", show=False, tooltip="length up: 100 more characters per Generate / Continue"),
    Binding("r", "generate", "Regenerate", show=False, tooltip="regenerate: from the same prompt again"),
    Binding("x", "clear", "Clear", show=False, tooltip="clear: empty the output"),
    Binding("ctrl+s", "save", "Save", priority=True, show=False, tooltip="save text to a file: the prompt and the output"),
    Binding("y", "copy", "Copy", show=False, tooltip="copy text: the prompt and the output, to the clipboard"),
    Binding("o", "colour", "Colours", tooltip="colour by probability: each character by the probability the model gave it"),
    Binding("u", "use_live", "Live run", show=False, tooltip="use the run being trained: a snapshot of its weights at each Generate"),
    Binding("n", "pick_mode", "Pick next",
            tooltip="pick-next mode: the model offers its likeliest next characters; 1-9 chooses, space lets it draw, n again ends"),
    Binding("v", "novelty", "Novelty",
            tooltip="novelty: the share of the output's 20-character windows found in the training text; the longest copy highlighted"),
    Binding("w", "sweep", "Sweep", show=False,
            tooltip="temperature sweep: the same prompt and seed at 0.2, 0.5, 0.8, 1.0 and 1.3, side by side"),
    Binding("g", "toggle_guesses", "Guesses", show=False, tooltip="guesses panel: show / hide the model's next-character guesses"),
    *(Binding(str(n), f"pick({n})", f"Pick {n}", show=False, tooltip=f"pick candidate {n}: in pick-next mode")
      for n in range(1, 10)),
    Binding("space", "pick(0)", "Let it draw", show=False, tooltip="let the model draw: in pick-next mode, under the controls"),
]


class GenerateScreen(AppScreen):
    BINDINGS = KEYS

    def __init__(self) -> None:
        super().__init__()
        self.live = LiveSettings()               # what the sampler reads at every character (the knobs set it)
        self.source: Source | None = None

    @property
    def knobs(self) -> Knobs:
        return self.query_one(Knobs)

    @property
    def play(self) -> GenerationPanel:
        """The text, and the state of play around it (where Continue goes on from, pick-next)."""
        return self.query_one(GenerationPanel)

    def compose(self) -> ComposeResult:
        yield NavBar("generate")
        yield ModelSource("gen-model")
        yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False)
        yield Knobs(self.live)
        with Horizontal(id="gen-buttons"):
            for label, action, variant in (("Generate", "generate", "success"), ("Stop", "stop", "error"),
                                           ("Continue", "continue", "primary"), ("Clear", "clear", "default"),
                                           ("Save", "save", "default"), ("Copy", "copy", "default"),
                                           ("Colours", "colour", "default")):
                yield Button(label, id=f"gen-{action}", variant=variant, compact=True, action=f"screen.{action}")
        yield GenerationPanel(self.live, id="gen-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).border_title = "Prompt (ctrl+g generates)"
        self.refresh_models()

    def on_screen_resume(self) -> None:
        self.refresh_models()

    # -- the model ------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The live run (if any) first, then every run under checkpoints/."""
        if not self.query_one(ModelSource).refresh_models():
            self.query_one(OutputView).border_subtitle = "no models yet: train one on the Train screen (press 1)"

    def open_run(self, path: Path) -> None:
        """Show a run's checkpoint here (from the Models screen)."""
        self.query_one(ModelSource).open_run(path)

    def action_use_live(self) -> None:
        """Generate from the run being trained right now."""
        self.open_live()

    def open_live(self) -> None:
        self.query_one(ModelSource).open_live()

    @on(ModelSource.Loading)
    def _loading(self) -> None:
        self.play.stop()         # not action_stop: a prompt being typed keeps the focus
        self.query_one(OutputView).border_subtitle = "loading…"

    @on(ModelSource.Picked)
    def _set_source(self, event: ModelSource.Picked) -> None:
        """A model is ready: generate from it from now on."""
        self.play.stop()
        source = self.source = event.source
        self.knobs.vocab_size = len(source.vocab)
        self.play.end = None
        out = self.query_one(OutputView)
        out.border_subtitle = Text(f"{source.label} · {source.detail}" if source.detail else source.label)
        self.notify(f"model: {source.label}", timeout=3)

    @on(ModelSource.Failed)
    def _no_source(self, event: ModelSource.Failed) -> None:
        self.notify(event.problem, title="Generate", severity=event.severity, timeout=10)
        if event.severity == "error":
            self.source = None
            self.query_one(OutputView).border_subtitle = "could not load that checkpoint"

    # -- temperature sweep --------------------------------------------------------------------
    def action_sweep(self) -> None:
        """The prompt at several temperatures, side by side, with one seed."""
        prompt = self.usable_prompt()
        if prompt is None:
            return
        self.action_stop()
        self.play.sweep(self.source, prompt, self.knobs.seed())

    # -- novelty ----------------------------------------------------------------------------
    def action_novelty(self) -> None:
        """How much of the output the model copied from its training text."""
        self.play.find_novelty(self.query_one(ModelSource).run_dir)

    # -- generate, continue, stop ----------------------------------------------------------
    def usable_prompt(self) -> str | None:
        """The prompt, when there is a model and the prompt is one it can read; else None, said."""
        if self.source is None:
            self.notify("pick a model first: a checkpoint, or the run being trained", severity="warning")
            self.query_one("#gen-model").focus()
            return None
        prompt = self.query_one("#prompt", TextArea).text
        try:
            check_prompt(self.source.vocab, prompt)
        except UsageError as e:
            self.notify(e.message, title="Generate", severity="error")
            return None
        return prompt

    def action_generate(self) -> None:
        """Generate from the prompt (again: a new sample each time unless the seed is fixed)."""
        prompt = self.usable_prompt()
        if prompt is None:
            return
        note = unknown_note(self.source.vocab, prompt)
        if note:
            self.notify(note, severity="warning")
        self.play.generate(self.source, prompt, self.knobs.seed())

    def action_continue(self) -> None:
        """Go on from where the text stopped."""
        if not self.play.can_go_on() or self.source is None:
            self.action_generate()
            return
        self.play.go_on(self.source, self.knobs.seed(offset=len(self.query_one(OutputView).tokens)))

    def action_edit_prompt(self) -> None:
        """Into the prompt, to type (letters are this screen's keys until then)."""
        self.query_one("#prompt", TextArea).focus()

    def action_stop(self) -> None:
        """Stop the text streaming (the output stays; Continue goes on from it)."""
        self.play.stop()
        if self.focused is self.query_one("#prompt"):
            self.query_one(OutputView).focus()

    # -- pick-next --------------------------------------------------------------------------
    def action_pick_mode(self) -> None:
        """Pick-next mode on (or off): the model offers its likeliest next characters, one
        character at a time, from where the text stands."""
        play = self.play
        if play.picking is not None:
            play.leave_pick_mode()
            return
        if self.source is None:
            self.usable_prompt()             # says what is missing
            return
        self.action_stop()
        if play.can_go_on() and play.out.tokens:
            play.pick_mode(PickNext(play.end.sampler, self.live, after=play.end.continuation, seed=self.knobs.seed()))
            return
        prompt = self.usable_prompt()
        if prompt is not None:
            play.out.start(prompt)
            play.pick_mode(PickNext(make_sampler(self.source), self.live, prime=prompt,   # as a stream would
                                    seed=self.knobs.seed()))

    def action_pick(self, number: int) -> None:
        """In pick-next mode: candidate `number` (1-9) comes next; 0 lets the model draw one."""
        self.play.pick(number)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """1-9 and space pick only in pick-next mode (elsewhere 1-4 switch screens)."""
        return self.play.picking is not None if action == "pick" else True

    def action_toggle_guesses(self) -> None:
        """Show or hide the model's next-character guesses."""
        self.play.toggle_guesses()

    # -- the knobs' keys ---------------------------------------------------------------------
    def action_nudge(self, knob: str, delta: float) -> None:
        """A knob (temperature, top_k, top_p, length) up or down, applied to the next character."""
        self.knobs.nudge(knob, delta)

    # -- the text ------------------------------------------------------------------------------
    def action_clear(self) -> None:
        """Clear the output."""
        self.play.clear()

    def action_copy(self) -> None:
        """Copy the text to the clipboard (through the terminal)."""
        self.query_one(OutputView).copy_all()

    def action_colour(self) -> None:
        """Colour each character by the probability the model gave it."""
        out = self.query_one(OutputView)
        out.colour = not out.colour
        self.query_one("#prompt").border_subtitle = LEGEND if out.colour else ""

    def action_save(self) -> None:
        """Save the text to a file."""
        name = (self.source.label if self.source else "sample").replace("live: ", "").replace(" ", "-")
        self.query_one(OutputView).save_as(Path.cwd() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.txt")
