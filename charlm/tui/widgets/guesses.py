"""The model's top guesses for one position, as probability bars."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

BAR = 20          # cells for probability 1


def shown(ch: str) -> str:
    """A character as a person can see it in a list: space and line break made visible."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch if ch.isprintable() else "·")


def bars(guesses: list[tuple[str, float]], actual: str | None = None, numbered: bool = False) -> Text:
    """One line per guess: (its number,) the character, a bar and the probability; the character
    that actually came is marked."""
    text = Text()
    for n, (ch, p) in enumerate(guesses, 1):
        if numbered:
            text.append(f"{n} ", style="bold")
        text.append(f"{shown(ch):>2} ", style="bold reverse" if ch == actual else "bold")
        full = int(round(p * BAR))
        text.append("█" * full + "·" * (BAR - full), style="green" if ch == actual else "")
        text.append(f" {p:6.1%}\n")
    return text


class Guesses(Static):
    """The top guesses at the cursor, and the probability the character that came was given."""

    DEFAULT_CSS = """
    Guesses { height: auto; border: round $panel; padding: 0 1; border-title-color: $text-muted; }
    """

    def on_mount(self) -> None:
        self.border_title = "next-character guesses"

    def show_next(self, guesses: list, numbered: bool = False, note: str = "") -> None:
        """The likeliest next characters (Tokens), numbered 1-9 for picking."""
        head = Text(note + "\n" if note else "", style="dim")
        self.update(head + bars([(t.char, t.prob) for t in guesses], numbered=numbered))

    def show_position(self, guesses: list[tuple[str, float]], actual: str, prob: float | None, position: int) -> None:
        head = Text(f"character {position + 1:,} of the text\n", style="dim")
        if not actual:
            self.update(Text("read a text, then move the cursor over it (arrows, or click)", style="dim"))
            return
        if prob is None:
            self.update(head + Text("read, never predicted: no characters come before it", style="dim"))
            return
        body = bars(guesses, actual)
        body.append(f"{shown(actual)!s} came: {prob:.1%}", style="bold")
        if actual not in {ch for ch, _ in guesses}:
            body.append(" (not among the guesses)", style="dim")
        self.update(head + body)
