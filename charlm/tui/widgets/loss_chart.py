"""Train and validation loss against steps or minutes: a plotext chart with axes and a legend."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

MAX_POINTS = 400          # per series: more is invisible at terminal resolution and slows drawing

Point = tuple[int, float, float]   # (step, elapsed seconds, loss)


def _thin(points: list[Point]) -> list[Point]:
    """At most MAX_POINTS, evenly spaced, always keeping the newest."""
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    out = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return out + [points[-1]]


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
        for points, label, colour, marker in ((self.train, "train", "cyan", "hd"), (self.val, "val", "orange", "hd")):
            shown = _thin(points)
            if shown:
                plt.plot([self._x(p) for p in shown], [p[2] for p in shown], label=label, color=colour,
                         marker=marker)
        self.refresh()

    def render(self) -> RenderResult:
        if not self.train and not self.val:
            return Text(self.empty_hint, style="dim", justify="center")
        return super().render()
