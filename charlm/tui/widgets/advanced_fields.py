"""The model panel's Advanced section: the cell, the shape and the training settings a preset
or auto fills in, each validated as it is typed."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.validation import Integer, Number
from textual.widgets import Collapsible, Input, Label

from charlm.config import CELLS, ModelConfig, TrainConfig
from charlm.tui.widgets.select import Select

# (field, label, int?, which config, validator)
FIELDS = (
    ("layers", "layers", True, "model", Integer(1, 8)),
    ("hidden", "hidden", True, "model", Integer(4, 4096)),
    ("embed", "embed", True, "model", Integer(1, 1024)),
    ("dropout", "dropout", False, "model", Number(0.0, 0.95)),
    ("seq_len", "seq-len", True, "train", Integer(2, 4096)),
    ("batch_size", "batch", True, "train", Integer(1, 4096)),
    ("lr", "lr", False, "train", Number(1e-6, 10.0)),
    ("eval_every", "eval every", True, "train", Integer(1, 1_000_000)),
)
NAMES = frozenset(f[0] for f in FIELDS)


def field_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class AdvancedFields(Collapsible):
    def __init__(self, **kwargs) -> None:
        rows = [Horizontal(Label("cell", classes="field-label"),
                           Select([(c, c) for c in CELLS], id="cell", value="lstm", allow_blank=False, compact=True),
                           classes="field-row")]
        for name, label, is_int, _, validator in FIELDS:
            rows.append(Horizontal(Label(label, classes="field-label"),
                                   Input(id=name, type="integer" if is_int else "number", compact=True,
                                         validators=[validator]),
                                   classes="field-row"))
        super().__init__(*rows, title="Advanced", **kwargs)

    def show(self, m: ModelConfig, t: TrainConfig) -> None:
        """Put these configs' values in the fields, without a Changed message for each."""
        with self.prevent(Select.Changed, Input.Changed):
            self.query_one("#cell", Select).value = m.cell
            for name, _, _, which, _ in FIELDS:
                self.query_one(f"#{name}", Input).value = field_text(getattr(m if which == "model" else t, name))

    def apply(self, m: ModelConfig, t: TrainConfig) -> None:
        """The fields' values into these configs (the fields valid: see `errors`)."""
        m.cell = str(self.query_one("#cell", Select).value)
        for name, _, is_int, which, _ in FIELDS:
            raw = self.query_one(f"#{name}", Input).value
            setattr(m if which == "model" else t, name, int(raw) if is_int else float(raw))

    def errors(self) -> list[str]:
        """"label: what is wrong" for each field that does not validate."""
        out = []
        for name, label, *_ in FIELDS:
            inp = self.query_one(f"#{name}", Input)
            result = inp.validate(inp.value)
            if result is not None and not result.is_valid:
                out.append(f"{label}: {'; '.join(result.failure_descriptions) or 'invalid'}")
        return out

    def hold(self, names, held: bool) -> None:
        """Fields a run started from another cannot change (its shape), or free again."""
        for name in names:
            self.query_one(f"#{name}").disabled = held
