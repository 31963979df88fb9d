"""What the Generate screen's keys and buttons do, and how its live settings stay in step with
the sampler's controls (kept apart from the layout in generate.py)."""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input, Select, TextArea

from charlm.errors import UsageError
from charlm.sample import check_prompt, unknown_note
from charlm.tui.generation import LiveSettings, PickNext, Source, StreamEnd, StreamJob, make_sampler, new_seed
from charlm.tui.screens.dialogs import TextPrompt
from charlm.tui.widgets.gauge import Gauge
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.knobs import KNOBS
from charlm.tui.widgets.output import LEGEND, OutputView


class GenerateActions(Screen):
    """GenerateScreen's base: the state of play (model, stream, settings) and what the keys do
    to it; the layout, the model source and the workers are GenerateScreen's (generate.py)."""

    temperature: reactive[float] = reactive(KNOBS["temperature"].default)
    top_k: reactive[int] = reactive(KNOBS["top_k"].default)
    top_p: reactive[float] = reactive(KNOBS["top_p"].default)
    length: reactive[int] = reactive(KNOBS["length"].default)

    def __init__(self) -> None:
        super().__init__()
        self.live = LiveSettings()
        self.source: Source | None = None
        self.end: StreamEnd | None = None        # where Continue goes on from
        self.job: StreamJob | None = None
        self.generation = 0
        self.seed: int | None = None
        self.rate = 0.0                          # the model's chars/s in the last stream
        self.picking: PickNext | None = None     # pick-next mode, when on

    def _stream(self, job: StreamJob, generation: int) -> None:
        raise NotImplementedError            # GenerateScreen's worker

    def _show_counts(self, done: bool = False) -> None:
        raise NotImplementedError            # GenerateScreen's title line

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
        self.seed = self._seed_from_field()
        self.query_one(OutputView).start(prompt)
        self._begin(StreamJob(None, self.source, prompt, self.seed))

    def action_continue(self) -> None:
        """Go on from where the text stopped."""
        end = self.end
        if end is None or end.continuation is None or self.source is None:
            self.action_generate()
            return
        self.seed = self._seed_from_field(offset=len(self.query_one(OutputView).tokens))
        self._begin(StreamJob(end.sampler, self.source, "", self.seed, after=end.continuation))

    def _begin(self, job: StreamJob) -> None:
        self._leave_pick_mode()
        self.action_stop()
        self.generation += 1
        self.job, self.end = job, None
        self._show_counts()
        self.query_one(OutputView).focus()
        self._stream(job, self.generation)

    def action_stop(self) -> None:
        """Stop the text streaming (the output stays; Continue goes on from it)."""
        self._leave_pick_mode()
        if self.job is not None:
            self.job.stop.set()
        if self.focused is self.query_one("#prompt"):
            self.query_one(OutputView).focus()

    # -- pick-next --------------------------------------------------------------------------
    def action_pick_mode(self) -> None:
        """Pick-next mode on (or off): the model offers its likeliest next characters, one
        character at a time, from where the text stands."""
        if self.picking is not None:
            self._leave_pick_mode()
            return
        if self.source is None:
            self.usable_prompt()             # says what is missing
            return
        self.action_stop()
        out = self.query_one(OutputView)
        end = self.end
        if end is not None and end.continuation is not None and out.tokens:
            self.picking = PickNext(end.sampler, self.live, after=end.continuation, seed=self._seed_from_field())
        else:
            prompt = self.usable_prompt()
            if prompt is None:
                return
            out.start(prompt)
            self.picking = PickNext(make_sampler(self.source), self.live, prime=prompt,   # as a stream would
                                    seed=self._seed_from_field())
        out.focus()                   # digits go to the picking, not into the prompt
        self.set_class(True, "-picking")
        self._offer()

    def action_pick(self, number: int) -> None:
        """In pick-next mode: candidate `number` (1-9) comes next; 0 lets the model draw one."""
        picking = self.picking
        tok = picking.let_model_pick() if number == 0 else picking.pick(number)
        if tok is None:
            self.notify(f"there is no candidate {number}", severity="warning")
            return
        self.query_one(OutputView).add([tok])
        self._offer()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """1-9 and space pick only in pick-next mode (elsewhere 1-4 switch screens)."""
        if action == "pick":
            return self.picking is not None
        return True

    def _offer(self) -> None:
        self.query_one(Guesses).show_next(self.picking.offer(), numbered=True,
                                          note="pick-next: 1-9 chooses · space: the model draws · n: done")
        out = self.query_one(OutputView)
        out.border_title = f"Output · {len(out.tokens):,} chars · picking the next character"

    def _leave_pick_mode(self) -> None:
        if self.picking is None:
            return
        self.end, self.picking = self.picking.end(), None       # Continue goes on from the picked text
        self.set_class(False, "-picking")
        self._show_counts(done=True)
        self.query_one(Guesses).show_next([], note="pick-next mode ended")

    def action_toggle_guesses(self) -> None:
        """Show or hide the model's next-character guesses."""
        panel = self.query_one(Guesses)
        panel.display = not panel.display

    def _seed_from_field(self, offset: int = 0) -> int:
        field = self.query_one("#seed", Input)
        raw = field.value.strip()
        return int(raw) + offset if raw.isdigit() and field.is_valid else new_seed()   # out of range: random

    # -- live settings ------------------------------------------------------------------------
    def validate_temperature(self, value: float) -> float:
        return KNOBS["temperature"].clamp(value)

    def validate_top_k(self, value: int) -> int:
        value = KNOBS["top_k"].clamp(value)
        return min(value, len(self.source.vocab)) if self.source is not None else value

    def validate_top_p(self, value: float) -> float:
        return KNOBS["top_p"].clamp(value)

    def validate_length(self, value: int) -> int:
        return KNOBS["length"].clamp(value)

    def watch_temperature(self, value: float) -> None:
        self.live.controls.temperature = value          # the sampler reads it at the next character
        self.query_one("#temperature", Gauge).value = value

    def watch_top_k(self, value: int) -> None:
        self.live.controls.top_k = value
        self._sync_input("top-k", value)

    def watch_top_p(self, value: float) -> None:
        self.live.controls.top_p = value
        self._sync_input("top-p", value)

    def watch_length(self, value: int) -> None:
        self.live.length = value
        self._sync_input("length", value)

    def _sync_input(self, name: str, value) -> None:
        inp = self.query_one(f"#{name}", Input)
        try:
            same = type(value)(inp.value) == value
        except ValueError:
            same = False
        if not same:
            inp.value = str(value)

    def action_temperature(self, delta: float) -> None:
        """Temperature up or down, applied to the next character."""
        self.temperature += delta

    def action_top_k(self, delta: int) -> None:
        """Top-k up or down (0 = off)."""
        self.top_k += delta

    def action_top_p(self, delta: float) -> None:
        """Top-p up or down (1 = off)."""
        self.top_p += delta

    def action_length(self, delta: int) -> None:
        """Length up or down."""
        self.length += delta

    @on(Gauge.Clicked, "#temperature")
    def _gauge_clicked(self, event: Gauge.Clicked) -> None:
        """Set the temperature where the gauge was clicked."""
        self.temperature = event.value

    @on(Select.Changed, "#pace")
    def _pace_picked(self, event: Select.Changed) -> None:
        """A pace picked: the stream takes it up at its next character."""
        self.live.pace = float(event.value)

    @on(Input.Changed, "#top-k, #top-p, #length")
    def _knob_typed(self, event: Input.Changed) -> None:
        """A setting typed: applied at once if valid."""
        if event.validation_result is not None and not event.validation_result.is_valid:
            return
        name = event.input.id.replace("-", "_")           # the field top-k sets the knob top_k
        setattr(self, name, KNOBS[name].kind(event.value))

    @on(Input.Submitted, "#top-k, #top-p, #length, #seed")
    @on(Input.Blurred, "#top-k, #top-p, #length, #seed")
    def _knob_refused(self, event: Input.Submitted | Input.Blurred) -> None:
        """A setting left out of range (Enter, or focus moved on): say so, and what is used instead."""
        result = event.validation_result
        if result is None or result.is_valid:
            return
        name = event.input.id
        why = " ".join(d.rstrip(".") for d in result.failure_descriptions).lower() or "out of range"
        knob = name.replace("-", "_")
        in_use = getattr(self, knob) if knob in KNOBS else "a random seed"
        self.notify(f"{name} {event.value!r} cannot be used: {why}; still using {in_use}", title="Generate",
                    severity="error")

    @on(Input.Changed, "#seed")
    def _seed_typed(self, event: Input.Changed) -> None:
        """A seed typed while text streams reseeds the very next character (and the next Generate)."""
        raw = event.value.strip()
        if raw.isdigit() and (event.validation_result is None or event.validation_result.is_valid):
            self.live.controls.seed = int(raw)

    # -- the text ------------------------------------------------------------------------------
    def action_clear(self) -> None:
        """Clear the output."""
        self.action_stop()
        self.generation += 1
        self.end = None
        self.query_one(OutputView).clear()

    def action_copy(self) -> None:
        """Copy the text to the clipboard (through the terminal)."""
        text = self.query_one(OutputView).text
        if not text:
            self.notify("nothing to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"copied {len(text):,} characters (if your terminal allows clipboard access)", timeout=3)

    def action_colour(self) -> None:
        """Colour each character by the probability the model gave it."""
        out = self.query_one(OutputView)
        out.colour = not out.colour
        self.query_one("#prompt").border_subtitle = LEGEND if out.colour else ""

    def action_save(self) -> None:
        """Save the text to a file."""
        text = self.query_one(OutputView).text
        if not text:
            self.notify("nothing to save yet", severity="warning")
            return
        name = (self.source.label if self.source else "sample").replace("live: ", "").replace(" ", "-")
        default = str(Path.cwd() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.txt")

        def write(path: str | None) -> None:
            if not path:
                return
            target = Path(path).expanduser()
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            except OSError as e:
                self.notify(f"could not save to {target}: {e.strerror}", severity="error")
                return
            self.notify(f"saved {len(text):,} characters to {target}", title="Saved")

        self.app.push_screen(TextPrompt("Save the text to", default), write)
