"""How inspection results are coloured, for the terminal (the CLI) and the app alike: text as
rich `Text` with one background per character. Surprise (-log2 p) on a five-step scale from
green to red; a unit's activation on a diverging scale, blue below zero and red above.
Newlines stay visible: a styled "↵" before each."""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text

# Surprise in bits: below 1 the model all but knew the character; 8 bits or more, it gave it
# less than 1/256.
SURPRISE_STEPS = ((1.0, "green4", "< 1"), (2.0, "chartreuse3", "1-2"), (4.0, "yellow3", "2-4"),
                  (8.0, "dark_orange", "4-8"), (math.inf, "red3", ">= 8"))
UNSCORED = "grey50"


def surprise_colour(bits: float) -> str:
    if bits != bits:                     # NaN: the first character, read but never predicted
        return UNSCORED
    return next(colour for top, colour, _ in SURPRISE_STEPS if bits < top)


def surprise_styles(bits: np.ndarray) -> list[str]:
    """One style per character: its surprise's colour behind black text."""
    return [f"black on {surprise_colour(b)}" for b in bits]


def surprise_text(chars: list[str], bits: np.ndarray) -> Text:
    return _shaded(chars, surprise_styles(bits))


def surprise_legend() -> Text:
    legend = Text("surprise, bits (-log2 p): ")
    for _, colour, label in SURPRISE_STEPS:
        legend.append(f" {label} ", style=f"black on {colour}")
        legend.append(" ")
    legend.append(" first character: not predicted ", style=f"black on {UNSCORED}")
    return legend


ACTIVATION_LEVELS = 8       # shades each side of 0: neighbours that look alike share a span


def activation_colour(value: float, scale: float) -> str:
    """White at 0, full red at +scale, full blue at -scale."""
    x = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    x = round(x * ACTIVATION_LEVELS) / ACTIVATION_LEVELS
    fade = int(round(255 * (1 - abs(x))))
    return f"rgb(255,{fade},{fade})" if x >= 0 else f"rgb({fade},{fade},255)"


def activation_scale(kind: str, values: np.ndarray) -> float:
    """The activation shown at full colour: 1 for an output `h` (a tanh, within [-1, 1]); for a
    cell state `c`, unbounded, the largest it reaches in this text."""
    return 1.0 if kind == "h" else max(float(np.abs(values).max()), 1e-6)


def activation_styles(values: np.ndarray, scale: float) -> list[str]:
    return [f"black on {activation_colour(v, scale)}" for v in values]


def activation_text(chars: list[str], values: np.ndarray, scale: float) -> Text:
    return _shaded(chars, activation_styles(values, scale))


def activation_legend(scale: float) -> Text:
    legend = Text("activation: ")
    for v in (-scale, -scale / 2, 0.0, scale / 2, scale):
        legend.append(f" {v:+.2f} ", style=f"black on {activation_colour(v, scale)}")
        legend.append(" ")
    return legend


def _shaded(chars: list[str], styles: list[str]) -> Text:
    """One span per run of equal styles (a text of 100k characters renders in a blink)."""
    text, run, run_style = Text(), [], None
    for ch, style in zip(chars, styles):
        if style != run_style and run:
            text.append("".join(run), style=run_style)
            run = []
        run_style = style
        run.append("↵\n" if ch == "\n" else ch)
    if run:
        text.append("".join(run), style=run_style)
    return text
