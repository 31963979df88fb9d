"""A long text coloured character by character (by surprise or by a unit), with a cursor.

Only the lines on screen are built as rich Text: colouring all of tinyshakespeare's 111k-char
validation split in one Text took seconds to lay out, and the cursor moves at every key press."""

from __future__ import annotations

import bisect

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from charlm.analysis import shading


class InspectText(Widget, can_focus=True):
    """`show(chars, ...)` a text; arrows, page keys and clicks move the cursor (`cursor`)."""

    DEFAULT_CSS = """
    InspectText { height: 1fr; border: round $panel; padding: 0 1; }
    InspectText:focus { border: round $primary; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "Previous character", show=False, tooltip="the cursor one character back"),
        Binding("right", "move(1)", "Next character", show=False, tooltip="the cursor one character on"),
        Binding("up", "line(-1)", "Line up", show=False, tooltip="the cursor a line up"),
        Binding("down", "line(1)", "Line down", show=False, tooltip="the cursor a line down"),
        Binding("pageup", "line(-10)", "Ten lines up", show=False, tooltip="the cursor ten lines up"),
        Binding("pagedown", "line(10)", "Ten lines down", show=False, tooltip="the cursor ten lines down"),
        Binding("home", "jump(0)", "First character", show=False, tooltip="the cursor to the first character"),
        Binding("end", "jump(-1)", "Last character", show=False, tooltip="the cursor to the last character"),
    ]

    cursor: reactive[int] = reactive(0)

    class CursorMoved(Message):
        def __init__(self, position: int) -> None:
            super().__init__()
            self.position = position

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chars: list[str] = []
        self.styles_of: list[str] = []             # one background style per character
        self.legend = Text("")
        self.starts: list[int] = [0]               # where each line begins
        self.top = 0                               # the first line shown

    def show(self, chars: list[str], styles: list[str], legend: Text, keep_cursor: bool = False) -> None:
        """A new text (or the same one coloured another way, with `keep_cursor`)."""
        self.chars, self.styles_of, self.legend = chars, styles, legend
        self.starts = [0] + [i + 1 for i, c in enumerate(chars) if c == "\n" and i + 1 < len(chars)]
        if not keep_cursor:
            self.top = 0
            self.cursor = 0
        self.refresh()

    def show_surprise(self, result, keep_cursor: bool = False) -> None:
        """A reading (charlm.analysis.probe.ProbeResult) coloured by the model's surprise."""
        self.show(result.chars, shading.surprise_styles(result.surprise_bits), shading.surprise_legend(), keep_cursor)

    def show_unit(self, chars: list[str], unit, values) -> None:
        """The same text coloured by one unit's activation at each character."""
        scale = shading.activation_scale(unit.kind, values)
        legend = shading.activation_legend(scale) + Text(f"   unit {unit} · ctrl+e: back to surprise")
        self.show(chars, shading.activation_styles(values, scale), legend, keep_cursor=True)

    # -- moving --------------------------------------------------------------------------
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.chars) - 1)) if self.chars else 0

    def watch_cursor(self, position: int) -> None:
        line = self._line_of(position)
        rows = max(1, self.content_size.height - 1)        # the last row holds the legend
        if line < self.top:
            self.top = line
        elif line >= self.top + rows:
            self.top = line - rows + 1
        self.refresh()
        self.post_message(self.CursorMoved(position))

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_jump(self, position: int) -> None:
        self.cursor = position if position >= 0 else len(self.chars) - 1

    def action_line(self, delta: int) -> None:
        """The same column (or the line's end) `delta` lines away."""
        line = self._line_of(self.cursor)
        column = self.cursor - self.starts[line]
        target = max(0, min(line + delta, len(self.starts) - 1))
        end = self.starts[target + 1] - 1 if target + 1 < len(self.starts) else len(self.chars) - 1
        self.cursor = min(self.starts[target] + column, end)

    def on_click(self, event: events.Click) -> None:
        """Put the cursor on the character clicked."""
        offset = event.get_content_offset(self)
        if offset is None or not self.chars:
            return
        line = self.top + offset.y
        if line >= len(self.starts):
            return
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.chars) - 1
        self.cursor = min(self.starts[line] + offset.x, end)
        self.focus()

    def _line_of(self, position: int) -> int:
        return bisect.bisect_right(self.starts, position) - 1

    # -- drawing -------------------------------------------------------------------------
    def render(self) -> Text:
        if not self.chars:
            return Text("Pick a model and a text, then Read (ctrl+r).", style="dim")
        rows = max(1, self.content_size.height - 1)
        first = self.starts[self.top]
        last_line = min(self.top + rows, len(self.starts))
        end = self.starts[last_line] if last_line < len(self.starts) else len(self.chars)
        text = Text(no_wrap=True, overflow="crop")
        for i in range(first, end):
            c = self.chars[i]
            style = self.styles_of[i] + (" reverse bold" if i == self.cursor else "")
            if c == "\n":
                text.append("↵", style=style)
                text.append("\n")
            else:
                text.append(c if c.isprintable() else "·", style=style)
        if not text.plain.endswith("\n"):
            text.append("\n")
        text.append_text(self.legend)
        return text
