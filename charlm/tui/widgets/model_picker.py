"""Choose the model: a preset (with its size and speed on this machine), the budget, and the
advanced fields, each validated as it is typed."""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import Integer, Number
from textual.widgets import Collapsible, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from charlm.config import CELLS, PRESETS, ModelConfig, TrainConfig, preset_configs
from charlm.errors import UsageError
from charlm.model import param_count
from charlm.tui import format as fmt
from charlm.tui import speeds
from charlm.tui.errors import describe_error

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


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class ModelPicker(Vertical):
    """Preset select, model info, budget, and an Advanced section."""

    def __init__(self, preset: str, model: dict, train: dict, budget: float, unit: str, **kwargs):
        super().__init__(**kwargs)
        self.initial = (preset, model, train)
        self.budget, self.unit = budget, unit
        self.vocab_size = 66
        self.filled: str | None = None      # the preset whose values are in the fields
        self._cancel = threading.Event()
        self._measure_timer = None

    def compose(self) -> ComposeResult:
        yield Label("Model", classes="field-title")
        yield Select(self._preset_options(), id="preset", value=self.initial[0], allow_blank=False, compact=True)
        yield Static("", id="model-info", classes="info")
        with Horizontal(classes="field-row"):
            yield Label("budget", classes="field-label")
            yield Input(_text(self.budget), id="budget", type="number", compact=True,
                        validators=[Number(minimum=0.01, maximum=1e7)])
            yield Select([("minutes", "minutes"), ("steps", "steps")], id="budget-unit", value=self.unit,
                         allow_blank=False, compact=True)
        with Collapsible(title="Advanced", id="advanced"):
            with Horizontal(classes="field-row"):
                yield Label("cell", classes="field-label")
                yield Select([(c, c) for c in CELLS], id="cell", value="lstm", allow_blank=False, compact=True)
            for name, label, is_int, _, validator in FIELDS:
                with Horizontal(classes="field-row"):
                    yield Label(label, classes="field-label")
                    yield Input(id=name, type="integer" if is_int else "number", compact=True, validators=[validator])
        yield Static("", id="model-errors", classes="errors")

    def on_mount(self) -> None:
        name, model, train = self.initial
        self.fill(name, model, train)

    def fill(self, preset: str, model: dict | None = None, train: dict | None = None) -> None:
        """Put a preset's values (plus overrides) into the fields."""
        m, t = preset_configs(preset)
        for k, v in (model or {}).items():
            setattr(m, k, v)
        for k, v in (train or {}).items():
            setattr(t, k, v)
        self.filled = preset
        if "eval_every" not in (train or {}):
            t.eval_every = self.app.options.eval_every
        with self.prevent(Select.Changed):
            self.query_one("#cell", Select).value = m.cell
        for name, _, _, which, _ in FIELDS:
            self.query_one(f"#{name}", Input).value = _text(getattr(m if which == "model" else t, name))
        self._train_extra = {k: v for k, v in vars(t).items() if k not in {f[0] for f in FIELDS}}
        self.update_info()

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        """A preset picked: its values fill the fields."""
        if event.value != self.filled:
            self.fill(str(event.value))

    @on(Input.Changed)
    @on(Select.Changed, "#cell")
    def _field_changed(self) -> None:
        """Any field edited: re-check and show size and speed."""
        self.update_info()

    def set_vocab_size(self, n: int) -> None:
        self.vocab_size = n
        self.refresh_presets()

    def _preset_options(self) -> list[tuple[str, str]]:
        """Each preset with its size and its speed on this machine (≈ estimated)."""
        options = []
        for name, p in PRESETS.items():
            m, t = preset_configs(name)
            m.vocab_size = self.vocab_size
            cps, kind = speeds.estimate(m, t)
            speed = "" if cps is None else f" {'≈' if kind == 'estimated' else ''}{fmt.count(cps)}/s"
            options.append((f"{name:<8} {m.layers}x{m.hidden:<4} {fmt.count(param_count(m)):>5}{speed}", name))
        return options

    def refresh_presets(self) -> None:
        """Relabel the presets (the vocabulary or the speed estimates changed)."""
        select = self.query_one("#preset", Select)
        value = select.value
        with self.prevent(Select.Changed):
            select.set_options(self._preset_options())
            select.value = value
            select.mutate_reactive(Select.value)     # relabel even when the value stayed the same
        self.update_info()

    def errors(self) -> list[str]:
        out = []
        for inp in self.query(Input):
            result = inp.validate(inp.value)
            if result is not None and not result.is_valid:
                label = "budget" if inp.id == "budget" else next(f[1] for f in FIELDS if f[0] == inp.id)
                out.append(f"{label}: {'; '.join(result.failure_descriptions) or 'invalid'}")
        return out

    def update_info(self) -> None:
        errors = self.errors()
        self.query_one("#model-errors", Static).update("\n".join(errors))
        info = self.query_one("#model-info", Static)
        if errors:
            info.update("[dim]fix the fields in red[/]")
            return
        m, t = self.configs()
        cps, kind = speeds.estimate(m, t)
        if cps is None:
            speed = "speed: not measured yet"
        else:
            how = {"measured": "", "quick": " (tested)", "estimated": " (est.)"}[kind]
            speed = f"{'≈ ' if kind == 'estimated' else ''}{fmt.count(cps)} chars/s{how}"
        if kind in ("", "estimated"):
            self._measure_soon(m, t)
        preset = PRESETS.get(str(self.query_one("#preset", Select).value))
        desc = preset.description.split(": ", 1)[-1] if preset else ""
        info.update(f"{fmt.count(param_count(m))} params · {speed}\n[dim]{desc}[/]")

    # -- timing this machine, while nothing else runs ---------------------------------------
    def _measure_soon(self, m: ModelConfig, t: TrainConfig) -> None:
        """Time this shape a second after the fields stop changing, unless a run is on."""
        if not self.app.options.calibrate_speed or self.app.session.active:
            return
        if self._measure_timer is not None:
            self._measure_timer.stop()
        self._measure_timer = self.set_timer(1.0, lambda: self._start_measure(m, t))

    def _start_measure(self, m: ModelConfig, t: TrainConfig) -> None:
        if self.app.session.active:
            return
        self.cancel_measure()
        self._cancel = threading.Event()
        self._measure(m, t, self._cancel)

    def on_unmount(self) -> None:
        self.cancel_measure()

    def cancel_measure(self) -> None:
        """A run starts: timing now would only measure the two competing for the CPU."""
        self._cancel.set()
        if self._measure_timer is not None:
            self._measure_timer.stop()

    @work(thread=True, exclusive=True, exit_on_error=False, group="measure")
    def _measure(self, m: ModelConfig, t: TrainConfig, cancel: threading.Event) -> None:
        try:
            if not speeds.calibrated():
                speeds.calibrate(cancel=cancel)
            speeds.quick_measure(m, t, cancel)
        except speeds.Cancelled:
            pass        # the run's own measured speed will be recorded instead

    @on(Worker.StateChanged)
    def _measured(self, event: Worker.StateChanged) -> None:
        """Show the new speeds (or say why there are none)."""
        if event.worker.group != "measure":
            return
        if event.worker.state == WorkerState.SUCCESS:
            self.refresh_presets()
        elif event.worker.state == WorkerState.ERROR:
            self.notify(f"could not time this machine: {describe_error(event.worker.error)}", severity="warning")

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The configs the fields describe; UsageError naming the fields that are wrong."""
        errors = self.errors()
        if errors:
            raise UsageError("some model settings are invalid: " + "; ".join(errors), "fix the fields in red")
        m = ModelConfig(vocab_size=self.vocab_size, cell=str(self.query_one("#cell", Select).value))
        t = TrainConfig(**self._train_extra)
        for name, _, is_int, which, _ in FIELDS:
            raw = self.query_one(f"#{name}", Input).value
            setattr(m if which == "model" else t, name, int(raw) if is_int else float(raw))
        budget = float(self.query_one("#budget", Input).value)
        if self.query_one("#budget-unit", Select).value == "steps":
            t.steps, t.minutes = max(1, int(budget)), None
        else:
            t.steps, t.minutes = None, budget
        t.sample_length = self.app.options.sample_length
        return m, t
