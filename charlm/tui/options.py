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
    eval_every: int = 100              # validations (and samples) more often than headless: they are the show
    sample_length: int = 200
    time_presets: bool = True          # time a named preset's steps (once per machine) to show its chars/s
    step_hz: float = 10.0              # live updates per second while training
    chart_interval: float = 1.0        # seconds between chart redraws (a redraw costs a few ms)
    theme: str = "textual-dark"
