"""Train and validation loss against steps or minutes: a plotext chart with axes and a legend."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

MAX_POINTS = 400          # per series: more is invisible at terminal resolution and slows drawing
TICK_CELLS = 9            # columns a tick label needs ("12,000" and a gap): plotext drops or crowds more

Point = tuple[int, float, float]   # (step, elapsed seconds, loss)


def _thin(points: list[Point]) -> list[Point]:
    """At most MAX_POINTS, evenly spaced, always keeping the newest."""
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    out = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return out + [points[-1]]


def axis_ticks(lo: float, hi: float, whole: bool, most: int = 6) -> tuple[list[float], list[str]]:
    """Round tick marks across [lo, hi]: the closest spacing of 1, 2 or 5 times a power of ten
    that gives at most `most`. `whole` (steps) keeps them whole numbers; plotext's own would
    label step 1513.2."""
    if hi <= lo:
        return [lo], [f"{lo:,.0f}" if whole else f"{lo:g}"]
    power = 10.0 ** math.floor(math.log10((hi - lo) / most))
    spacings = [m * power * 10 ** k for k in (0, 1, 2) for m in (1, 2, 5)]
    spacing = next(s for s in spacings if math.floor(hi / s + 1e-9) - math.ceil(lo / s - 1e-9) + 1 <= most)
    spacing = max(spacing, 1) if whole else spacing
    first = math.ceil(lo / spacing - 1e-9)
    ticks = [(first + i) * spacing for i in range(math.floor(hi / spacing + 1e-9) - first + 1)]
    decimals = 0 if whole else max(0, -math.floor(math.log10(spacing) + 1e-9))
    return ticks, [f"{t:,.{decimals}f}" for t in ticks]


class LossChart(PlotextPlot):
    """Call `show(train, val)` with the points so far; `x_axis` switches steps <-> minutes."""

    x_axis: reactive[str] = reactive("steps")
    empty_hint: reactive[str] = reactive("The loss curves appear here once training starts.")

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.train: list[Point] = []
        self.val: list[Point] = []

    def show(self, train: list[Point], val: list[Point]) -> None:
        self.train, self.val = train, val
        self._draw()

    def watch_x_axis(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()              # as many ticks as the new width holds

    def toggle_axis(self) -> None:
        self.x_axis = "minutes" if self.x_axis == "steps" else "steps"

    def _x(self, p: Point) -> float:
        return p[0] if self.x_axis == "steps" else p[1] / 60.0

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss (nats/char)")
        plt.xlabel(self.x_axis)
        # "hd" (quarter blocks) draws cleanly in every terminal font and in SVG screenshots.
        xs = []
        for points, label, colour, marker in ((self.train, "train", "cyan", "hd"), (self.val, "val", "orange", "hd")):
            shown = _thin(points)
            if shown:
                x = [self._x(p) for p in shown]
                plt.plot(x, [p[2] for p in shown], label=label, color=colour, marker=marker)
                xs += x
        if xs:
            most = max(2, min(6, (self.size.width - 6) // TICK_CELLS))     # 6: the loss labels on the left
            plt.xticks(*axis_ticks(min(xs), max(xs), whole=self.x_axis == "steps", most=most))
        self.refresh()

    def render(self) -> RenderResult:
        if not self.train and not self.val:
            return Text(self.empty_hint, style="dim", justify="center")
        return super().render()
