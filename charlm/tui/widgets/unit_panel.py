"""The Inspect screen's side: the model's guesses at the cursor, and finding units: a pattern
to search for, a unit to colour by, and the units the last search found."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from charlm.analysis.neurons import UnitScore
from charlm.tui.widgets.guesses import Guesses


class UnitPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Guesses("", id="ins-guesses")
        with Horizontal(classes="ins-row"):
            yield Input(id="ins-pattern", placeholder="quote|paren|line-position|after-newline|REGEX", compact=True)
        with Horizontal(classes="ins-row"):
            yield Input(id="ins-unit", placeholder="unit LAYER:KIND:INDEX, e.g. 0:c:17", compact=True)
        yield OptionList(id="ins-units")

    def on_mount(self) -> None:
        self.query_one(OptionList).border_title = "units for the pattern (ctrl+f)"
        self.query_one(Guesses).show_position([], "", None, 0)

    def list_units(self, units: list[UnitScore]) -> str:
        """The units found, best first (enter on the first colours by it at once); what to say."""
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(f"{s.unit!s:>9}  {s.score:+.3f}", id=str(s.unit)) for s in units])
        if not units:
            return "no units"
        options.highlighted = 0
        return (f"best unit {units[0].unit} at {units[0].score:+.3f} (Pearson r with the pattern); "
                "enter on a row colours by it")
