"""A horizontal gauge for a live setting (temperature): drawn as a bar, set by keys or a click."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.color import Color
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class Gauge(Widget):
    """`label ━━━━━━●──────── 0.80`; clicking on the bar sets the value there."""

    DEFAULT_CSS = """
    Gauge { height: 1; width: 1fr; }
    """

    value: reactive[float] = reactive(0.0)

    @dataclass
    class Clicked(Message):
        gauge: "Gauge"
        value: float

        @property
        def control(self) -> "Gauge":
            return self.gauge

    def __init__(self, label: str, minimum: float, maximum: float, value: float, fmt: str = "{:.2f}",
                 hint: str = "", **kwargs):
        super().__init__(**kwargs)
        self.label, self.minimum, self.maximum, self.fmt, self.hint = label, minimum, maximum, fmt, hint
        self.set_reactive(Gauge.value, value)

    def _bar_span(self) -> tuple[int, int]:
        """Columns where the bar starts and how wide it is."""
        start = len(self.label) + 1
        tail = len(self.fmt.format(self.maximum)) + 2 + (len(self.hint) + 1 if self.hint else 0)
        return start, max(self.size.width - start - tail, 4)

    def render(self) -> Text:
        start, width = self._bar_span()
        frac = (self.value - self.minimum) / (self.maximum - self.minimum)
        pos = min(max(round(frac * (width - 1)), 0), width - 1)
        text = Text(self.label + " ", style="bold")
        # A theme's colour as Rich reads it: the ANSI themes name theirs "ansi_blue", which Rich does not.
        accent = Color.parse(self.app.theme_variables.get("primary", "cyan")).rich_color
        text.append("━" * pos, style=Style(bold=True, color=accent))
        text.append("●", style="bold")
        text.append("─" * (width - pos - 1), style="dim")
        text.append(" " + self.fmt.format(self.value).rjust(len(self.fmt.format(self.maximum))), style="bold")
        if self.hint:
            text.append(" " + self.hint, style="dim")
        return text

    def on_click(self, event: events.Click) -> None:
        start, width = self._bar_span()
        x = event.x - start
        if 0 <= x < width:
            value = self.minimum + (self.maximum - self.minimum) * x / (width - 1)
            self.post_message(self.Clicked(self, value))
