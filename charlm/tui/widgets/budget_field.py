"""The model panel's budget: a number and its unit (minutes or steps)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.validation import Number
from textual.widgets import Input, Label

from charlm.config import budget_fields
from charlm.errors import UsageError
from charlm.tui.widgets.advanced_fields import field_text
from charlm.tui.widgets.select import Select


class BudgetField(Horizontal):
    def __init__(self, budget: float, unit: str, **kwargs) -> None:
        super().__init__(classes="field-row", **kwargs)
        self.budget, self.unit = budget, unit

    def compose(self) -> ComposeResult:
        yield Label("budget", classes="field-label")
        yield Input(field_text(self.budget), id="budget", type="number", compact=True,
                    validators=[Number(minimum=0.01, maximum=1e7)])
        yield Select([("minutes", "minutes"), ("steps", "steps")], id="budget-unit", value=self.unit,
                     allow_blank=False, compact=True)

    @property
    def in_steps(self) -> bool:
        return self.query_one("#budget-unit", Select).value == "steps"

    def error(self) -> str | None:
        """What is wrong with the number, if anything."""
        raw = self.query_one("#budget", Input)
        result = raw.validate(raw.value)
        if result is None or result.is_valid:
            return None
        return f"budget: {'; '.join(result.failure_descriptions) or 'invalid'}"

    def fields(self) -> dict:
        """The budget as TrainConfig's steps and minutes (config.budget_fields); UsageError while
        the number is invalid."""
        if self.error():
            raise UsageError("the budget is invalid", "fix the budget field")
        budget = float(self.query_one("#budget", Input).value)
        return budget_fields(max(1, int(budget)) if self.in_steps else None, None if self.in_steps else budget)
