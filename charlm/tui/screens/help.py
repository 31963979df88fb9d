"""The `?` screen: every key, by screen."""

from __future__ import annotations

from collections.abc import Callable

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from charlm.tui.keys import Section, keys_of, what

NOTE = ("Losses are in nats per character; bits/char = nats / ln 2. A model that has learned nothing "
        "scores about log2(vocabulary size) bits/char (6 for Shakespeare); a good small Shakespeare model "
        "gets to about 1.5 nats (2.2 bits) per character.")


def help_text(sections: list[Section], display: Callable[[Binding], str]) -> str:
    """Every key by screen, from the bindings themselves (charlm.tui.keys)."""
    lines = ["[b]charlm: keys[/b]   [dim](esc closes; everything also works with the mouse)[/]", ""]
    for section in sections:
        lines.append(f"[b $accent]{section.title}[/]")
        rows = [(keys_of(b, display), what(b)) for b in section.bindings + section.widget_bindings]
        for keys, text in rows + list(section.hints):
            lines.append(f"  [b]{escape(keys.ljust(16))}[/b]{escape(text)}")
        lines.append("")
    lines.append(f"[dim]{NOTE}[/]")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text(self.app.key_sections(), self.app.get_key_display), id="help-text")
