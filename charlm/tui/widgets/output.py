"""The generated text as it streams: the prompt in bold, then each character, optionally
coloured by the probability the model gave it."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from charlm.errors import UsageError
from charlm.generate.sampler import Token
from charlm.paths import shown_path, user_path
from charlm.tui.screens.dialogs import TextPrompt

# (lowest probability, colour): sure characters green, surprising ones red.
# Mid-tone colours: readable on the light theme and on the dark one.
BUCKETS = ((0.5, "#3da84a"), (0.2, "#c9a000"), (0.05, "#e06c00"), (0.0, "#e0302e"))
LEGEND = "colour = the model's probability: " + " ".join(
    f"[{c}]{'≥' if floor else '<'}{floor if floor else 0.05:.0%}[/]" for floor, c in BUCKETS)


def colour_of(prob: float) -> str:
    return next(c for floor, c in BUCKETS if prob >= floor)


# Characters a block holds before it is frozen (at the next line break, or at twice this): only
# the last block is drawn again as text streams, so a 100k-character output costs what 2k do.
BLOCK_CHARS = 2000
# Frozen blocks shown, at most (100k-200k characters, some 1,500 lines and more): text in view
# costs ~200 bytes a character, ~570 coloured (its spans, styles and drawn lines; measured with
# tracemalloc), and the length knob goes to 10 million. Older blocks leave the view; the text
# itself is kept whole (Generated, ~9 bytes a character) for Save, Copy and Continue.
SHOWN_BLOCKS = 50
COPIED = "bold #ffffff on #7a3fa0"     # the longest span copied from the training text


class Generated:
    """The characters generated so far, as a sequence of Tokens, kept compact: their text and two
    arrays (~9 bytes a character, where a Token object each costs over 100)."""

    def __init__(self):
        self._parts: list[str] = []
        self._text = ""
        self.ids, self.probs = array("l"), array("f")

    def extend(self, tokens: Iterable[Token]) -> None:
        tokens = list(tokens)
        self._parts.append("".join(t.char for t in tokens))
        self.ids.extend(t.id for t in tokens)
        self.probs.extend(t.prob for t in tokens)

    @property
    def text(self) -> str:
        if self._parts:
            self._text = "".join([self._text, *self._parts])
            self._parts.clear()
        return self._text

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Token:
        return Token(self.text[i], self.ids[i], self.probs[i])

    def __iter__(self) -> Iterator[Token]:
        return self.since(0)

    def since(self, start: int) -> Iterator[Token]:
        text = self.text
        return (Token(text[i], self.ids[i], self.probs[i]) for i in range(start, len(self)))


class OutputView(VerticalScroll, can_focus=True):
    """Scrolls to follow the text while it streams, unless you scrolled up to read. The text is
    shown in blocks (one Static each); new characters only redraw the last one, and only the
    last SHOWN_BLOCKS stay in view (a line at the top says how much is not shown)."""

    colour: reactive[bool] = reactive(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prompt = ""
        self.tokens = Generated()
        self._tail = Text()              # the last block's text
        self._tail_chars = 0
        self._appended = 0               # tokens drawn so far (their index in self.tokens)
        self._frozen: deque[tuple[Static, int]] = deque()   # blocks above the last, and their characters
        self._hidden = 0                 # characters (the prompt's included) no longer in view
        self.copied: range | None = None  # tokens shown as copied from the training text

    def compose(self) -> ComposeResult:
        yield Static("", id="output-hidden")
        yield Static("", id="output-text", classes="output-block")

    @property
    def generated(self) -> str:
        return self.tokens.text

    @property
    def text(self) -> str:
        return self.prompt + self.generated

    def copy_all(self) -> None:
        """The prompt and the output to the clipboard (through the terminal)."""
        if not self.text:
            self.notify("nothing to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(self.text)
        self.notify(f"copied {len(self.text):,} characters (if your terminal allows clipboard access)", timeout=3)

    def save_as(self, default: Path) -> None:
        """The prompt and the output to a file, its name asked (`default` offered)."""
        text = self.text
        if not text:
            self.notify("nothing to save yet", severity="warning")
            return

        def write(path: str | None) -> None:
            if not path:
                return
            try:
                target = user_path(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            except UsageError as e:
                self.notify(e.message, severity="error")
                return
            except OSError as e:
                self.notify(f"could not save to {shown_path(path)}: {e.strerror}", severity="error")
                return
            self.notify(f"saved {len(text):,} characters to {target}", title="Saved")


        self.app.push_screen(TextPrompt("Save the text to", str(default)), write)

    def start(self, prompt: str) -> None:
        self.prompt, self.tokens, self.copied = prompt, Generated(), None
        self._rebuild()

    def mark_copied(self, span: range | None) -> None:
        """Highlight these generated characters (indices into `tokens`) as copied."""
        self.copied = span
        self._rebuild()

    def clear(self) -> None:
        self.start("")

    def add(self, tokens: list[Token]) -> None:
        following = self.scroll_y >= self.max_scroll_y - 1
        self.tokens.extend(tokens)
        self._extend(tokens)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def watch_colour(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        if not self.is_mounted:
            return
        for block, _ in self._frozen:
            block.remove()
        self._frozen.clear()
        # Only what the view would still hold is drawn again: the last SHOWN_BLOCKS blocks' worth.
        start = max(0, len(self.tokens) - (SHOWN_BLOCKS + 1) * BLOCK_CHARS)
        self._hidden = len(self.prompt) + start if start else 0
        self._tail = Text(self.prompt if not start else "", style="bold")
        self._tail_chars = len(self._tail)
        self._appended = start
        self._extend(list(self.tokens.since(start)))
        self._show_hidden()

    def _extend(self, tokens: list[Token]) -> None:
        """Append to the last block; freeze it into its own Static once it is long enough."""
        tail = self.query_one("#output-text", Static)
        start = 0
        for i, t in enumerate(tokens):
            self._tail_chars += 1
            if (t.char == "\n" and self._tail_chars >= BLOCK_CHARS) or self._tail_chars >= 2 * BLOCK_CHARS:
                self._append(self._tail, tokens[start:i + 1])
                block = Static(self._tail, classes="output-block")
                self.mount(block, before=tail)
                self._frozen.append((block, self._tail_chars))
                self._tail, self._tail_chars, start = Text(), 0, i + 1
        self._append(self._tail, tokens[start:])
        tail.update(self._tail)
        if len(self._frozen) > SHOWN_BLOCKS:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        """Take the oldest blocks out of view, keeping what the reader sees where it was."""
        lines = 0
        while len(self._frozen) > SHOWN_BLOCKS:
            block, chars = self._frozen.popleft()
            lines += block.outer_size.height
            self._hidden += chars
            block.remove()
        self._show_hidden()
        if self.scroll_y < self.max_scroll_y - 1:     # scrolled up to read: the text stays put
            self.scroll_to(y=max(0, self.scroll_y - lines), animate=False)

    def _show_hidden(self) -> None:
        note = self.query_one("#output-hidden", Static)
        note.display = self._hidden > 0
        note.update(f"⋯ the first {self._hidden:,} characters are not shown here: Save (ctrl+s) and "
                    "Copy (y) keep the whole text" if self._hidden else "")

    def _append(self, text: Text, tokens: list[Token]) -> None:
        first, self._appended = self._appended, self._appended + len(tokens)
        if not self.colour and not self.copied:
            text.append("".join(t.char for t in tokens))
            return
        run, style = [], None
        for i, t in enumerate(tokens, first):
            c = COPIED if self.copied and i in self.copied else colour_of(t.prob) if self.colour else ""
            if c != style and run:
                text.append("".join(run), style=style)
                run = []
            run.append(t.char)
            style = c
        if run:
            text.append("".join(run), style=style)
