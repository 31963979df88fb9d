"""The Generate screen's knobs: temperature (a gauge), top-k, top-p, length, seed and pace.

Each knob's limits are written once, in KNOBS: the fields' validators, the clamping of the
screen's +/- keys and the gauge's range all read them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import Integer, Number
from textual.widgets import Input, Label, Select

from charlm.tui.widgets.gauge import Gauge


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
    """The gauge and the fields; the screen owns the values (reactives) and listens for changes."""

    DEFAULT_CSS = """
    Knobs { height: auto; }
    """

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
