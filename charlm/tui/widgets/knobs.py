"""The Generate screen's knobs: temperature (a gauge), top-k, top-p, length, seed and pace, and
the values they hold.

Each knob's limits are written once, in KNOBS: the fields' validators, the clamping of the
screen's +/- keys and the gauge's range all read them."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.validation import Integer, Number
from textual.widgets import Input, Label

from charlm.tui.generate_session import LiveSettings, new_seed
from charlm.tui.widgets.gauge import Gauge
from charlm.tui.widgets.select import Select


@dataclass(frozen=True)
class Knob:
    low: float
    high: float
    default: float
    kind: type              # int or float
    digits: int = 2         # a float knob's value is rounded to this many decimals

    def clamp(self, value):
        value = min(max(value, self.low), self.high)
        return int(value) if self.kind is int else round(value, self.digits)

    def validator(self):
        return (Integer if self.kind is int else Number)(self.low, self.high)


KNOBS = {
    "temperature": Knob(0.0, 2.0, 0.8, float),       # 0 = greedy; past 2 nothing readable is left
    "top_k": Knob(0, 100_000, 0, int),                # 0 = off (the screen caps it at the vocabulary)
    "top_p": Knob(0.01, 1.0, 1.0, float),             # 1 = off; 0 would keep nothing
    "length": Knob(1, 10_000_000, 1000, int),
}
SEED_MAX = 2**62
# Characters a second on screen: readable ones, and fast (as fast as the model writes).
PACES = [("30/s", 30.0), ("100/s", 100.0), ("300/s", 300.0), ("1k/s", 1000.0), ("fast", 0.0)]
DEFAULT_PACE = 300.0


class Knobs(Vertical):
    """The gauge and the fields, and the values they set: each change reaches the sampler's
    controls (charlm.tui.generate_session.LiveSettings) at once, so the very next character
    uses it, and the fields and the gauge follow the keys."""

    DEFAULT_CSS = """
    Knobs { height: auto; }
    """

    temperature: reactive[float] = reactive(KNOBS["temperature"].default)
    top_k: reactive[int] = reactive(KNOBS["top_k"].default)
    top_p: reactive[float] = reactive(KNOBS["top_p"].default)
    length: reactive[int] = reactive(KNOBS["length"].default)

    def __init__(self, live: LiveSettings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.live = live
        self.vocab_size: int | None = None       # the model's: top-k above it means nothing

    def compose(self) -> ComposeResult:
        t = KNOBS["temperature"]
        yield Gauge("temperature", t.low, t.high, t.default, hint="←/→", id="temperature")
        with Horizontal(id="gen-knobs"):
            for name, label in (("top_k", "top-k"), ("top_p", "top-p"), ("length", "length")):
                knob = KNOBS[name]
                yield Label(label)
                yield Input(str(knob.default), id=label, type="integer" if knob.kind is int else "number",
                            compact=True, validators=[knob.validator()])
            yield Label("seed")
            yield Input("", id="seed", type="integer", compact=True, placeholder="random",
                        validators=[Integer(0, SEED_MAX)], valid_empty=True)
            yield Label("pace")
            yield Select(PACES, id="pace", value=DEFAULT_PACE, allow_blank=False, compact=True)

    def seed(self, offset: int = 0) -> int:
        """The seed typed (plus `offset`), or a new random one when none (or one out of range) is."""
        field = self.query_one("#seed", Input)
        raw = field.value.strip()
        return int(raw) + offset if raw.isdigit() and field.is_valid else new_seed()

    def nudge(self, name: str, delta: float) -> None:
        """A knob up or down by `delta` (the keys), clamped to its range."""
        setattr(self, name, getattr(self, name) + delta)

    # -- values: clamped, then passed on ---------------------------------------------------
    def validate_temperature(self, value: float) -> float:
        return KNOBS["temperature"].clamp(value)

    def validate_top_k(self, value: int) -> int:
        value = KNOBS["top_k"].clamp(value)
        return min(value, self.vocab_size) if self.vocab_size else value

    def validate_top_p(self, value: float) -> float:
        return KNOBS["top_p"].clamp(value)

    def validate_length(self, value: int) -> int:
        return KNOBS["length"].clamp(value)

    def watch_temperature(self, value: float) -> None:
        self.live.controls.temperature = value          # the sampler reads it at the next character
        self.query_one("#temperature", Gauge).value = value

    def watch_top_k(self, value: int) -> None:
        self.live.controls.top_k = value
        self._show("top-k", value)

    def watch_top_p(self, value: float) -> None:
        self.live.controls.top_p = value
        self._show("top-p", value)

    def watch_length(self, value: int) -> None:
        self.live.length = value
        self._show("length", value)

    def _show(self, field: str, value) -> None:
        inp = self.query_one(f"#{field}", Input)
        try:
            same = type(value)(inp.value) == value
        except ValueError:
            same = False
        if not same:
            inp.value = str(value)

    # -- what is typed, clicked and picked -------------------------------------------------
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
