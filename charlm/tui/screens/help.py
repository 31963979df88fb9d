"""The `?` screen: every key, by screen."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("Anywhere", (
        ("1  2  3", "Train / Generate / Models screen (or click the tabs)"),
        ("?", "this help"),
        ("ctrl+p", "command palette: every action by name"),
        ("ctrl+t", "light / dark theme"),
        ("tab  shift+tab", "move between fields"),
        ("ctrl+q", "quit (asks whether to save a run in progress)"),
    )),
    ("Train", (
        ("s", "start training with the corpus and model on the left"),
        ("p  space", "pause / resume"),
        ("x", "stop and save the checkpoint"),
        ("c", "chart against steps or minutes"),
        ("→", "in the path field: complete the path"),
    )),
    ("Generate", (
        ("ctrl+g  r", "generate from the prompt (again)"),
        ("esc", "stop streaming"),
        ("c", "continue from where it stopped"),
        ("←  →  -  +", "temperature down / up: the next character uses it"),
        ("[  ]", "top-k down / up (0 = off)"),
        ("{  }", "top-p down / up (1 = off)"),
        ("<  >", "length down / up"),
        ("o", "colour each character by the probability the model gave it"),
        ("chars/s field", "streaming speed (0 = as fast as the model goes); seed empty = random"),
        ("x  y  ctrl+s", "clear / copy / save the text to a file"),
    )),
    ("Models", (
        ("enter  g", "open the run in Generate"),
        ("r", "resume training (its chart goes on)"),
        ("c", "the run's loss chart"),
        ("n  d", "rename / delete (asks first)"),
        ("f5", "read checkpoints/ again"),
    )),
)

NOTE = ("Losses are in nats per character; bits/char = nats / ln 2. A model that has learned nothing "
        "scores about log2(vocabulary size) bits/char (6 for Shakespeare); a good small Shakespeare model "
        "gets to about 1.5 nats (2.2 bits) per character.")


def help_text() -> str:
    lines = ["[b]charlm: keys[/b]   [dim](esc closes; everything also works with the mouse)[/]", ""]
    for title, keys in KEYS:
        lines.append(f"[b $accent]{title}[/]")
        lines += [f"  [b]{escape(k.ljust(16))}[/b]{escape(d)}" for k, d in keys]
        lines.append("")
    lines.append(f"[dim]{NOTE}[/]")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text(), id="help-text")
