"""The generated text as it streams: the prompt in bold, then each character, optionally
coloured by the probability the model gave it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from charlm.sample import Token

# (lowest probability, colour): sure characters green, surprising ones red.
# Mid-tone colours: readable on the light theme and on the dark one.
BUCKETS = ((0.5, "#3da84a"), (0.2, "#c9a000"), (0.05, "#e06c00"), (0.0, "#e0302e"))
LEGEND = "colour = the model's probability: " + " ".join(
    f"[{c}]{'≥' if floor else '<'}{floor if floor else 0.05:.0%}[/]" for floor, c in BUCKETS)


def colour_of(prob: float) -> str:
    return next(c for floor, c in BUCKETS if prob >= floor)


class OutputView(VerticalScroll, can_focus=True):
    """Scrolls to follow the text while it streams, unless you scrolled up to read."""

    colour: reactive[bool] = reactive(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prompt = ""
        self.tokens: list[Token] = []
        self._text = Text()

    def compose(self) -> ComposeResult:
        yield Static("", id="output-text")

    @property
    def generated(self) -> str:
        return "".join(t.char for t in self.tokens)

    @property
    def text(self) -> str:
        return self.prompt + self.generated

    def start(self, prompt: str) -> None:
        self.prompt, self.tokens = prompt, []
        self._rebuild()

    def clear(self) -> None:
        self.start("")

    def add(self, tokens: list[Token]) -> None:
        following = self.scroll_y >= self.max_scroll_y - 1
        self.tokens.extend(tokens)
        self._append(self._text, tokens)
        self.query_one("#output-text", Static).update(self._text)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def watch_colour(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        self._text = Text(self.prompt, style="bold")
        self._append(self._text, self.tokens)
        if self.is_mounted:
            self.query_one("#output-text", Static).update(self._text)

    def _append(self, text: Text, tokens: list[Token]) -> None:
        if not self.colour:
            text.append("".join(t.char for t in tokens))
            return
        run, style = [], None
        for t in tokens:
            c = colour_of(t.prob)
            if c != style and run:
                text.append("".join(run), style=style)
                run = []
            run.append(t.char)
            style = c
        if run:
            text.append("".join(run), style=style)
