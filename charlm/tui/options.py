"""What an app instance starts with. Tests pass a tiny corpus and model through here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AppOptions:
    corpus: str | None = None          # pre-selected corpus spec; None = the default corpus (Shakespeare)
    preset: str = "auto"               # pre-selected: the model that learns most in the budget on this machine
    model: dict = field(default_factory=dict)    # overrides of the preset's ModelConfig fields
    train: dict = field(default_factory=dict)    # overrides of the preset's TrainConfig fields
    budget: float = 5.0                # default budget ...
    budget_unit: str = "minutes"       # ... in "minutes" or "steps"
    # Validations as often as headless (each reads the validation split: at 100 steps they cost the
    # app a fifth of its steps), and a sample between them every 100 steps: the text is the show.
    eval_every: int = 500
    sample_every: int = 100
    sample_length: int = 200
    time_presets: bool = True          # time a named preset's steps (once per machine) to show its chars/s
    step_hz: float = 4.0               # live updates per second while training (each redraws the stats and
                                       # the bar: at 10 the UI thread took ~8 % of a core from a 2x256 run)
    chart_interval: float = 1.0        # seconds between chart redraws (a redraw costs a few ms)
    theme: str = "textual-dark"
